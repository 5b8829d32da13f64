// Command ext3replay reconstructs the file operations a virtual machine
// performed on an ext2/ext3 disk from the starting image and a log of the
// block requests the guest sent to it.
package main

import (
	"os"
)

func main() {
	os.Exit(execute())
}
