package diskimage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-img missing (package qemu-utils; scripts/deps.sh installs it)")
		}
		t.Skip("qemu-img missing")
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestQemuFormats: every format qemu-img writes opens as the raw bytes it was made from, and
// the file opened is left as it was.
func TestQemuFormats(t *testing.T) {
	needQemuImg(t)
	data := testImage(3 << 20)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ format, opts string }{
		{"qcow2", ""}, {"qcow2", "compression_type=zlib"}, {"qcow", ""}, {"qed", ""}, {"vmdk", ""},
		{"vdi", ""}, {"vhdx", ""}, {"vpc", "subformat=dynamic"}, {"vpc", "subformat=fixed"},
	} {
		t.Run(c.format+c.opts, func(t *testing.T) {
			p := filepath.Join(dir, "disk."+c.format)
			args := []string{"convert", "-f", "raw", "-O", c.format}
			if c.opts != "" {
				args = append(args, "-o", c.opts)
			}
			if c.format == "qcow2" && c.opts != "" {
				args = append(args, "-c") // compressed clusters
			}
			if out, err := exec.Command("qemu-img", append(args, raw, p)...).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img: %v\n%s", err, out)
			}
			before := fileHash(t, p)
			img, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Format != c.format {
				t.Errorf("format %q, want %q", img.Format, c.format)
			}
			// vpc rounds the size up to its CHS geometry; the extra bytes read as zeros.
			want := data
			if img.Size() > int64(len(data)) && c.format == "vpc" {
				want = append(append([]byte(nil), data...), make([]byte, img.Size()-int64(len(data)))...)
			}
			check(t, img, want)
			if fileHash(t, p) != before {
				t.Error("the image file changed")
			}
		})
	}
}

// TestQcow2Backing: an overlay is read with its backing file's content under it.
func TestQcow2Backing(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	data := testImage(1 << 20)
	base := filepath.Join(dir, "base.qcow2")
	raw := filepath.Join(dir, "base.raw")
	os.WriteFile(raw, data, 0o644)
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", raw, base).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ov := filepath.Join(dir, "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ov).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	img, err := Open(ov)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	check(t, img, data)
}

// TestQemuErrors: a damaged qcow2 and a missing qemu-img are errors that say so.
func TestQemuErrors(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.qcow2")
	// The magic and version 3, then a header that does not hold together.
	os.WriteFile(p, append([]byte("QFI\xfb\x00\x00\x00\x03"), bytes.Repeat([]byte{0xff}, 4096)...), 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "qemu-img convert -f qcow2") {
		t.Errorf("damaged qcow2: %v", err)
	}
	old := QemuImg
	QemuImg = filepath.Join(dir, "no-such-qemu-img")
	defer func() { QemuImg = old }()
	if _, err := Open(p); !errors.Is(err, ErrNoQemuImg) || !strings.Contains(err.Error(), "qemu-utils") {
		t.Errorf("no qemu-img: %v", err)
	}
}
