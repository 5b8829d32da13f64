//go:build ignore

// bench-index-gen writes the source tree for scripts/bench-index.sh: about N files (default
// 100000) in 1000 directories two levels deep, mostly small, some large enough for indirect and
// double-indirect blocks at 4 KiB, plus hard links and symlinks.
//
//	go run scripts/bench-index-gen.go DIR [N]
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/bench-index-gen.go DIR [N]")
		os.Exit(2)
	}
	dir := os.Args[1]
	n := 100000
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	buf := make([]byte, 6<<20)
	for i := range buf {
		buf[i] = byte(i*31+7) | 1 // no zero blocks: mke2fs -d would leave holes
	}
	const dirs = 1000
	for i := 0; i < n; i++ {
		d := i % dirs
		p := filepath.Join(dir, fmt.Sprintf("top%02d", d/50), fmt.Sprintf("dir%03d", d), fmt.Sprintf("file-%06d.dat", i))
		if i < dirs {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				fail(err)
			}
		}
		size := (i * 7919) % 6000
		switch {
		case i%5000 == 0:
			size = 6 << 20 // double indirect at 4 KiB blocks
		case i%100 == 0:
			size = 100 << 10 // single indirect
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			fail(err)
		}
		switch {
		case i%1000 == 1:
			fail(os.Link(p, p+".link"))
		case i%1000 == 2:
			fail(os.Symlink(filepath.Base(p), p+".sym"))
		}
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
