//go:build !linux

package diskimage

import "os"

// memFile: no memfd here; the zstd program writes to a temporary file.
func memFile(size int64) *os.File { return nil }
