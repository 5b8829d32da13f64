package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// One bad block in the middle of a directory of three: inspect --keep-going lists the entries
// of the other two blocks and the rest of the tree, names the block on stderr with its byte
// offset, and exits 4. (ext3fs.ReadDir stops at the bad block: the third block was lost too.)
func TestInspectKeepGoingAroundBadDirBlock(t *testing.T) {
	ext3fstest.Need(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "seed")
	names := map[string]bool{}
	for i := 0; i < 60; i++ {
		// 40-byte names: 48-byte entries, 21 to a 1 KiB block: three blocks.
		n := fmt.Sprintf("file-%02d-%s", i, strings.Repeat("x", 32))
		names[n] = true
		if err := os.MkdirAll(filepath.Join(src, "big"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "big", n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "other", "kept"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	cmd := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-O", "^dir_index", "-b", "1024", "-N", "128", "-d", src, img, "2M")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []uint64
	_ = fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		if p == "/big" {
			_ = fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
				if r.Kind == ext3fs.BlockData {
					blocks = append(blocks, r.Phys)
				}
				return nil
			})
		}
		return nil
	})
	if len(blocks) < 3 {
		t.Fatalf("/big has %d blocks, want 3 or more", len(blocks))
	}
	// The entries of the middle block are the ones to lose; then break its first rec_len.
	mid := blocks[1]
	lost, _ := ext3fs.ParseDirBlock(b[mid*1024:(mid+1)*1024], true)
	binary.LittleEndian.PutUint16(b[mid*1024+4:], 3)
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "inspect", img)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), fmt.Sprintf("block %d, logical 1", mid)) || out != "" {
		t.Fatalf("without --keep-going: err %v, out %q; want exit %d naming block %d", err, out, exitUsage, mid)
	}
	var stderr bytes.Buffer
	out, err = runCLIStderr(t, &stderr, "inspect", "--keep-going", img)
	if !errors.As(err, &ee) || ee.code != exitDamaged {
		t.Fatalf("--keep-going: %v, want exit %d", err, exitDamaged)
	}
	wantOff := fmt.Sprintf("at byte %d", mid*1024) // the entry whose rec_len is bad
	if !strings.Contains(stderr.String(), "/big/") || !strings.Contains(stderr.String(), wantOff) {
		t.Errorf("stderr does not name /big/ and %q:\n%s", wantOff, stderr.String())
	}
	for _, e := range lost {
		delete(names, e.Name)
	}
	if len(lost) == 0 || len(names) == 0 {
		t.Fatalf("%d entries in the bad block, %d elsewhere", len(lost), len(names))
	}
	paths := map[string]bool{}
	for _, row := range tableRows(out) {
		paths[row[len(row)-1]] = true
	}
	listed := 0
	for n := range names {
		if paths["/big/"+n] {
			listed++
		}
	}
	if listed != len(names) || !paths["/other/kept"] {
		t.Errorf("listed %d of the %d entries outside the bad block (and /other/kept: %v):\n%s",
			listed, len(names), paths["/other/kept"], out)
	}
	for _, e := range lost {
		if paths["/big/"+e.Name] {
			t.Errorf("%s, in the bad block, listed", e.Name)
		}
	}
	// JSON too: the same files, exit 4.
	js, err := runCLI(t, "inspect", "--keep-going", "--format", "json", img)
	var doc struct {
		Files []inspectFile `json:"files"`
	}
	if !errors.As(err, &ee) || ee.code != exitDamaged || json.Unmarshal([]byte(js), &doc) != nil || len(doc.Files) != len(tableRows(out))-1 {
		t.Errorf("--keep-going --format json: %v, %d files (text: %d)", err, len(doc.Files), len(tableRows(out))-1)
	}
}
