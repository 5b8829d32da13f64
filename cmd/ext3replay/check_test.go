package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/check"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

func runCheckCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := executeArgs(append([]string{"check"}, args...), &out, io.Discard)
	return code, out.String()
}

// check exits 0 on a real capture of a correct driver, and 1 with the finding as jsonl when one
// write of the same log sets the bitmap bit of a block nobody owns.
func TestCheckCommand(t *testing.T) {
	dir := filepath.Join(fixtures, "basic-ext2-4k")
	img := filepath.Join(dir, "image.raw.zst")
	code, out := runCheckCLI(t, img, filepath.Join(dir, "writes.lwlog.zst"))
	if code != exitOK || !strings.Contains(out, " 0 findings") {
		t.Fatalf("clean capture: exit %d, output %q", code, out)
	}

	// The last write of group 0's block bitmap marks the group's last block in use.
	im, err := diskimage.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext3fs.Open(im)
	if err != nil {
		t.Fatal(err)
	}
	bs := int64(fsys.BlockSize())
	bm := fsys.Groups[0].BlockBitmap
	last := fsys.SB.GroupBlocks(0) - 1
	im.Close()
	lr, err := blklog.Open(filepath.Join(dir, "writes.lwlog.zst"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []blklog.Record
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.Data = append([]byte(nil), rec.Data...)
		recs = append(recs, rec)
	}
	h := lr.Header()
	lr.Close()
	altered := int64(-1)
	for i := len(recs) - 1; i >= 0 && altered < 0; i-- {
		r := &recs[i]
		start := int64(r.Sector) * blklog.SectorSize
		if r.Type == blklog.TypeWrite && start <= int64(bm)*bs && int64(bm+1)*bs <= start+int64(r.Length) {
			r.Data[int64(bm)*bs-start+int64(last/8)] |= 1 << (last % 8)
			altered = r.Index
		}
	}
	if altered < 0 {
		t.Fatal("no write of the block bitmap in the log")
	}
	logPath := filepath.Join(t.TempDir(), "altered.log.zst")
	w, err := blklog.Create(logPath, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	code, out = runCheckCLI(t, "--format", "jsonl", img, logPath)
	if code != exitFindings {
		t.Fatalf("altered log: exit %d, want %d; output %q", code, exitFindings, out)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f check.Finding
		var alias struct {
			T   *float64 `json:"t"`
			Ino uint32   `json:"ino"`
		}
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		// analyze's names for time and inode carry the same values.
		if err := json.Unmarshal([]byte(line), &alias); err != nil || alias.T == nil || *alias.T != f.Time || alias.Ino != f.Inode {
			t.Errorf("%q: t/ino %+v, want time %v inode %d", line, alias, f.Time, f.Inode)
		}
		if f.Kind == "block-bitmap" && f.Block == fsys.SB.GroupFirstBlock(0)+last {
			found = true
			if f.Seq != altered || !f.AtEnd {
				t.Errorf("finding %+v: want seq %d, at_end", f, altered)
			}
		}
	}
	if !found {
		t.Errorf("no block-bitmap finding for block %d in %q", last, out)
	}
	if code, _ := runCheckCLI(t, "--format", "xml", img, logPath); code != exitUsage {
		t.Errorf("--format xml: exit %d, want %d", code, exitUsage)
	}
}
