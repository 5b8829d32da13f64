// Command finaldisk writes a scenario's final disk: its starting image (image.raw.zst) with every write
// of its native log (io.log.zst) applied in order. A scenario whose scenario.env says START_FROM=NAME
// starts from NAME's final disk (fixtures/capture/common.sh make_image): a second boot of a guest
// after the first one's power cut.
//
//	go run ./internal/scenario/cmd/finaldisk SCENARIO_DIR OUT.img
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/klauspost/compress/zstd"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: finaldisk SCENARIO_DIR OUT.img")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "finaldisk:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	in, err := os.Open(filepath.Join(dir, "image.raw.zst"))
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := zstd.NewReader(in)
	if err != nil {
		return err
	}
	defer zr.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, zr); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", in.Name(), err)
	}
	r, err := blklog.Open(filepath.Join(dir, "io.log.zst"))
	if err != nil {
		f.Close()
		return err
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
		if err := blklog.Apply(&rec, f); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
