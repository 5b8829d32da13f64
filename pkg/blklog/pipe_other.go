//go:build !linux

package blklog

import "os"

// widenPipe is a no-op where pipes cannot be given a larger buffer.
func widenPipe(*os.File) {}
