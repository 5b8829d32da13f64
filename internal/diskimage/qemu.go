package diskimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// QemuImg is the qemu-img program that converts the image formats read through it (a variable
// so tests can point it elsewhere).
var QemuImg = "qemu-img"

// qemuFormat names the qemu-img format of a file by its magic ("" for none of them): qcow2 and
// qcow (QFI\xfb and a version), QED, VMDK (sparse extent or descriptor), VDI, VHDX and VPC
// (VHD, dynamic or fixed). A raw disk never starts with one of these: sector 0 is a boot
// sector, a partition table or (a bare ext file system) unused.
func qemuFormat(f io.ReaderAt, size int64) string {
	head := make([]byte, 72)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")) && len(head) >= 8:
		if binary.BigEndian.Uint32(head[4:]) == 1 {
			return "qcow"
		}
		return "qcow2"
	case bytes.HasPrefix(head, []byte("QED\x00")):
		return "qed"
	case bytes.HasPrefix(head, []byte("KDMV")), bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return "vmdk"
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return "vhdx"
	case bytes.HasPrefix(head, []byte("conectix")):
		return "vpc"
	case len(head) >= 68 && binary.LittleEndian.Uint32(head[64:]) == 0xbeda107f:
		return "vdi"
	}
	if size >= 512 {
		// A fixed VHD is a raw disk with a 512-byte footer.
		var foot [8]byte
		if _, err := f.ReadAt(foot[:], size-512); err == nil && string(foot[:]) == "conectix" {
			return "vpc"
		}
	}
	return ""
}

// ErrNoQemuImg is wrapped by the error for an image that needs qemu-img when it is missing.
var ErrNoQemuImg = errors.New("qemu-img not found")

// convertQemu reads a qemu-img format through `qemu-img convert -O raw` into an unlinked sparse
// temporary file (zeros stay holes: the disk space used is what the guest allocated). qemu-img
// opens the source read-only, so the image (and any backing file) is never modified.
func convertQemu(path, format string) (*Image, error) {
	name, err := ConvertToRaw(path, format)
	if err != nil {
		return nil, err
	}
	defer os.Remove(name) // unlinked once open: the file lives as long as the Image
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Image{r: f, size: st.Size(), f: f, path: path, Format: format}, nil
}

// QemuFormatOf names the qemu-img format of the file at path ("" for raw or zstd images and for
// anything else Open reads as it is).
func QemuFormatOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	return qemuFormat(f, st.Size()), nil
}

// ConvertToRaw writes the raw content of the qemu-img format image at path to a new sparse
// temporary file and returns its name (the caller removes it). path is only read.
func ConvertToRaw(path, format string) (string, error) {
	exe, err := exec.LookPath(QemuImg)
	if err != nil {
		return "", fmt.Errorf("a %s image is read through qemu-img (package qemu-utils): %w", format, ErrNoQemuImg)
	}
	tmp, err := os.CreateTemp("", "ext3replay-image-*.raw")
	if err != nil {
		return "", fmt.Errorf("converting %s to raw in %s: %w", format, os.TempDir(), err)
	}
	name := tmp.Name()
	tmp.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(exe, "convert", "-q", "-f", format, "-O", "raw", "-S", "4k", path, name)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("qemu-img convert -f %s: %w: %s", format, err, strings.TrimSpace(stderr.String()))
	}
	return name, nil
}
