package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
)

// TestQcow2Image: a qcow2 copy of a fixture's starting image gives byte-identical analyze
// output (text, and jsonl apart from the header line that names the image file), inspect
// output and blocks output.
func TestQcow2Image(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img missing")
	}
	for _, name := range []string{"basic-ext3-4k", "basic-ext4-4k"} {
		dir := filepath.Join("../../fixtures/real", name)
		if _, err := os.Stat(filepath.Join(dir, "io.log.zst")); err != nil {
			t.Skipf("fixture %s not present", name)
		}
		t.Run(name, func(t *testing.T) {
			d, err := scenario.StartImage(dir)
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			raw, qcow := filepath.Join(tmp, "image.raw"), filepath.Join(tmp, "image.qcow2")
			if err := os.WriteFile(raw, d, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img: %v\n%s", err, out)
			}
			zst := filepath.Join(dir, "image.raw.zst")
			log := filepath.Join(dir, "io.log.zst")
			for _, args := range [][]string{
				{"analyze", "IMAGE", log},
				{"analyze", "--metadata", "--format", "jsonl", "IMAGE", filepath.Join(dir, "writes.lwlog.zst")},
				{"inspect", "IMAGE"},
				{"blocks", "IMAGE", "0", "1", "2"},
			} {
				outs := map[string]string{}
				for _, img := range []string{zst, qcow} {
					a := append([]string(nil), args...)
					for i := range a {
						if a[i] == "IMAGE" {
							a[i] = img
						}
					}
					code, out := run(t, a...)
					if code != exitOK {
						t.Fatalf("%v: exit %d", a, code)
					}
					if args[0] == "inspect" || strings.Contains(strings.Join(args, " "), "jsonl") {
						// The image's name and size on disk are in the first line; the rest must agree.
						_, out, _ = strings.Cut(out, "\n")
					}
					outs[img] = out
				}
				if outs[zst] != outs[qcow] || len(outs[zst]) < 100 {
					t.Errorf("%v: qcow2 output differs from zst output (%d vs %d bytes)", args, len(outs[qcow]), len(outs[zst]))
				}
			}
		})
	}
}
