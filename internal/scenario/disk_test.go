package scenario

import (
	"bytes"
	"testing"
)

// The final disk of a real capture differs from its start, both logs of a run replay to the same
// disk, and a write beyond the disk fails instead of growing it.
func TestFinalDisk(t *testing.T) {
	dir := "../../fixtures/real/basic-ext3-4k"
	start, err := StartImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := FinalDisk(dir, "io.log.zst")
	if err != nil {
		t.Fatal(err)
	}
	b, err := FinalDisk(dir, "writes.lwlog.zst")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(start) || bytes.Equal(a, start) {
		t.Fatal("the log changed nothing, or the size")
	}
	if !bytes.Equal(a, b) {
		t.Error("the recorder's log and the blklogwrites log replay to different disks")
	}
	if _, err := Disk(make([]byte, 512)).WriteAt(make([]byte, 8), 510); err == nil {
		t.Error("a write past the end of the disk was accepted")
	}
}
