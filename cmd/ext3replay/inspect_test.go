package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// tableRows returns the cells of every row of the boxed tables in out (header rows included):
// the lines between │ borders, split on │ and trimmed.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "│") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "│"), "│")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	return rows
}

// runCLI runs args on a new command tree and returns stdout; stderr is discarded.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLIStderr(t, io.Discard, args...)
}

// runCLIStderr is runCLI with stderr going to stderr.
func runCLIStderr(t *testing.T, stderr io.Writer, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(stderr)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// runArgs runs args on a new command tree with stdout and stderr as given (nil: the process's).
func runArgs(stdout, stderr io.Writer, args ...string) error {
	root := newRootCmd()
	if stdout != nil {
		root.SetOut(stdout)
	}
	if stderr != nil {
		root.SetErr(stderr)
	}
	root.SetArgs(args)
	return root.Execute()
}

func TestInspectAndBlocks(t *testing.T) {
	img, _ := ext3fstest.Build(t, ext3fstest.Image{Type: "ext3", BlockSize: 1024})
	fsys := ext3fstest.Open(t, img)
	type file struct {
		ino   uint32
		in    *ext3fs.Inode
		first uint64 // first data block
	}
	files := map[string]file{}
	fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		fl := file{ino: ino, in: in}
		fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
			if r.Kind == ext3fs.BlockData && fl.first == 0 {
				fl.first = r.Phys
			}
			return nil
		})
		files[p] = fl
		return nil
	})

	// Text: a summary, then one line per name with its inode number.
	out, err := runCLI(t, "inspect", img)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ext3, revision 1") || !strings.Contains(out, "has_journal") {
		t.Errorf("summary missing:\n%s", out[:min(len(out), 800)])
	}
	lines := map[string][]string{}
	for _, row := range tableRows(out) {
		if len(row) == 7 && strings.HasPrefix(row[6], "/") {
			p := strings.SplitN(row[6], " -> ", 2)[0]
			p = strings.SplitN(p, " [", 2)[0]
			lines[p] = row
		}
	}
	for p, fl := range files {
		row, ok := lines[p]
		if !ok {
			t.Errorf("inspect does not list %s", p)
			continue
		}
		if row[0] != fmt.Sprint(fl.ino) || row[4] != fmt.Sprint(fl.in.Size) {
			t.Errorf("%s: row %q, want inode %d size %d", p, row, fl.ino, fl.in.Size)
		}
	}

	// JSON, from a zstd-compressed copy of the image.
	zimg := filepath.Join(t.TempDir(), "img.zst")
	raw, _ := os.ReadFile(img)
	zf, _ := os.Create(zimg)
	zw, _ := zstd.NewWriter(zf)
	zw.Write(raw)
	zw.Close()
	zf.Close()
	out, err = runCLI(t, "inspect", "--format", "json", zimg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Compressed bool    `json:"compressed"`
		BlockSize  int     `json:"block_size"`
		Groups     *uint32 `json:"groups"`
		Files      []struct {
			Path   string `json:"path"`
			Ino    uint32 `json:"ino"`
			Target string `json:"target"`
			Htree  bool   `json:"htree"`
			Blocks uint64 `json:"blocks"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inspect json: %v", err)
	}
	// The documented group count (it was shadowed by the --groups array and never printed).
	if doc.Groups == nil || *doc.Groups != fsys.SB.GroupCount() {
		t.Errorf("json: groups %v, want the count %d", doc.Groups, fsys.SB.GroupCount())
	}
	if !doc.Compressed || doc.BlockSize != 1024 || len(doc.Files) != len(files) {
		t.Errorf("json: compressed %v block size %d, %d files (want %d)", doc.Compressed, doc.BlockSize, len(doc.Files), len(files))
	}
	for _, jf := range doc.Files {
		switch jf.Path {
		case "/fastlink":
			if jf.Target != "small.txt" {
				t.Errorf("/fastlink target %q", jf.Target)
			}
		case ext3fstest.HtreeDir:
			if !jf.Htree {
				t.Errorf("%s not marked htree", jf.Path)
			}
		case "/sparse-tind.bin":
			if jf.Blocks != 2+1+1+1 { // two data blocks; TIND, DIND, IND for the second
				t.Errorf("/sparse-tind.bin: %d blocks, want 5", jf.Blocks)
			}
		}
	}

	// --groups: one entry per group, matching the descriptors.
	out, err = runCLI(t, "inspect", "--groups", "--format", "json", img)
	if err != nil {
		t.Fatal(err)
	}
	var gdoc struct {
		Groups []inspectGroup `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &gdoc); err != nil || len(gdoc.Groups) != int(fsys.SB.GroupCount()) {
		t.Fatalf("inspect --groups: %v, %d groups", err, len(gdoc.Groups))
	}
	if g := gdoc.Groups[0]; g.Super != "primary" || g.BlockBitmap != fsys.Groups[0].BlockBitmap ||
		!strings.HasPrefix(g.InodeTable, fmt.Sprint(fsys.Groups[0].InodeTable)+"-") {
		t.Errorf("group 0: %+v", g)
	}

	// blocks: a data block, the superblock by sector, a free block and one past the end.
	ind := files["/ind.bin"]
	out, err = runCLI(t, "blocks", img, fmt.Sprint(ind.first), "1", fmt.Sprint(fsys.SB.BlocksCount-1), fmt.Sprint(fsys.SB.BlocksCount))
	if err != nil {
		t.Fatal(err)
	}
	ls := tableRows(out)
	if len(ls) != 5 || ls[0][0] != "BLOCK" {
		t.Fatalf("blocks: %d rows:\n%s", len(ls), out)
	}
	for i, want := range []string{"data", "superblock", "free", "outside"} {
		if !strings.HasPrefix(ls[i+1][1], want) {
			t.Errorf("blocks row %q, want %q", ls[i+1], want)
		}
	}
	if f := ls[1]; f[2] != fmt.Sprint(ind.ino) || f[3] != "0" || f[4] != "/ind.bin" {
		t.Errorf("data block row %q, want inode %d logical 0 /ind.bin", ls[1], ind.ino)
	}
	out, err = runCLI(t, "blocks", "--sectors", "--format", "json", img, fmt.Sprint(ind.first*2+1))
	if err != nil {
		t.Fatal(err)
	}
	var bis []blockInfo
	if err := json.Unmarshal([]byte(out), &bis); err != nil || len(bis) != 1 || bis[0].Block != ind.first || bis[0].Role != "data" || len(bis[0].Paths) != 1 {
		t.Errorf("blocks --sectors json: %v %+v", err, bis)
	}
	if _, err := runCLI(t, "blocks", img, "12x"); err == nil {
		t.Error("bad block number accepted")
	}
}
