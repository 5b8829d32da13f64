package blklog

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetect(t *testing.T) {
	dm := make([]byte, 16)
	dm[0], dm[1], dm[2], dm[3], dm[4], dm[5], dm[6] = 0x72, 0x68, 0x73, 0x77, 0x66, 0x73, 0x6a // DMLogMagic, little-endian
	for _, c := range []struct {
		head []byte
		want Format
	}{
		{[]byte(Magic + "\x01\x00"), FormatNative},
		{dm, FormatDMLogWrites},
		{[]byte("1234@1700000000.000001:blk_co_pwritev blk 0x5600 bs 0x0 offset 4096 bytes 4096 flags 0x0\n"), FormatQEMUTrace},
		{make([]byte, 512), ""},                         // an image's boot sector
		{[]byte("EXT3RLO"), ""},                         // too short
		{append([]byte{0xff, 0xfe}, "blk_co_p"...), ""}, // binary, not a trace
	} {
		if got := Detect(c.head); got != c.want {
			t.Errorf("Detect(%q) = %q, want %q", c.head, got, c.want)
		}
	}
}

// DetectFile looks inside zstd compression, as the committed fixtures are stored.
func TestDetectFile(t *testing.T) {
	dir := "../../fixtures/real/basic-ext3-4k"
	for name, want := range map[string]Format{"io.log.zst": FormatNative, "writes.lwlog.zst": FormatDMLogWrites, "image.raw.zst": "", "seed.sh": ""} {
		got, err := DetectFile(filepath.Join(dir, name))
		if err != nil || got != want {
			t.Errorf("DetectFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := DetectFile(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("DetectFile of a missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestParseFormat(t *testing.T) {
	for name, want := range map[string]Format{"dm-log-writes": FormatDMLogWrites, "blklogwrites": FormatDMLogWrites,
		"qemu-trace": FormatQEMUTrace, "native": FormatNative, "ext3replay": FormatNative} {
		if got, err := ParseFormat(name); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", name, got, err)
		}
	}
	if _, err := ParseFormat("tar"); err == nil {
		t.Error("ParseFormat(tar) accepted")
	}
}
