package diskimage

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// memFile returns an anonymous file in memory (memfd_create) for the zstd program to write an
// image of size bytes into, or nil to use a temporary file: when the size is unknown, or more
// than half of the memory the kernel counts available (MemAvailable), since memory of a memfd
// is not written back and dropped under pressure as a temporary file's page cache is (there
// is no swap to go to on most machines this runs on). Only the non-zero part of the image
// takes memory: the program writes it sparse.
func memFile(size int64) *os.File {
	if size < 0 || size > memAvailable()/2 {
		return nil
	}
	fd, err := unix.MemfdCreate("ext3replay-image", unix.MFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), "memfd:ext3replay-image")
}

// memAvailable is /proc/meminfo's MemAvailable in bytes, 0 when it cannot be read.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kib, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil || kib < 0 {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}
