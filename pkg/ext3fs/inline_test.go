package ext3fs_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

var eaRE = regexp.MustCompile(`(?m)^  (\S+)(?: = .*)? \((\d+)\)$`)
var lsRE = regexp.MustCompile(`(\d+)\s+\((\d+)\)\s+(\S+)`)

// TestInlineData builds the test tree with inline_data and checks, for every inline inode, its
// in-inode attributes against debugfs ea_list and, for directories, ReadDir against debugfs ls
// (file contents against the source tree are checked by TestAgainstE2fsprogs). The tree must
// give inline files of both sizes (i_block only, and i_block plus system.data) and inline
// directories, and the slow symlink (113 bytes) stored inline.
func TestInlineData(t *testing.T) {
	ext3fstest.Need(t)
	im := ext3fstest.Image{Name: "inline", Type: "ext4", BlockSize: 4096, Size: "16M", Extra: []string{"-O", "inline_data"}}
	img, _ := ext3fstest.Build(t, im)
	if _, err := ext3fs.Open(bytes.NewReader(must(os.ReadFile(img)))); err == nil || !strings.Contains(err.Error(), "inline_data") {
		t.Errorf("Open without Options.InlineData: %v, want inline_data refused by name", err)
	}
	fsys := ext3fstest.Open(t, img)
	type item struct {
		path string
		ino  uint32
		in   *ext3fs.Inode
	}
	var inl []item
	err := fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		if in.HasInlineData() {
			inl = append(inl, item{p, ino, in})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, it := range inl {
		cmds = append(cmds, fmt.Sprintf("ea_list <%d>", it.ino))
		cmds = append(cmds, fmt.Sprintf("ls <%d>", it.ino))
	}
	outs := ext3fstest.Debugfs(t, img, cmds)
	files, bigFiles, dirs, links := 0, 0, 0, 0
	raw := make([]byte, fsys.SB.InodeSize())
	for i, it := range inl {
		if _, err := fsys.ReaderAt().ReadAt(raw, it.in.Pos); err != nil {
			t.Fatal(err)
		}
		ents, err := ext3fs.ParseInodeXattrs(raw)
		if err != nil {
			t.Errorf("%s: ParseInodeXattrs: %v", it.path, err)
			continue
		}
		var got, want []string
		for _, e := range ents {
			got = append(got, fmt.Sprintf("%s %d", e.FullName(), e.ValueSize))
		}
		for _, m := range eaRE.FindAllStringSubmatch(outs[2*i], -1) {
			want = append(want, m[1]+" "+m[2])
		}
		sort.Strings(got)
		sort.Strings(want)
		if it.in.FileACL == 0 && strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: xattrs %v, debugfs ea_list %v", it.path, got, want)
		}
		switch it.in.Type() {
		case ext3fs.TypeRegular:
			files++
			if it.in.Size > ext3fs.InlineSize {
				bigFiles++
			}
		case ext3fs.TypeSymlink:
			links++
			if got, err := fsys.ReadLink(it.in); err != nil || got != ext3fstest.LongTarget {
				t.Errorf("%s: inline symlink reads %q, %v; want the %d-byte target", it.path, got, err, len(ext3fstest.LongTarget))
			}
		case ext3fs.TypeDir:
			dirs++
			des, err := fsys.ReadDir(it.in)
			if err != nil {
				t.Errorf("%s: ReadDir: %v", it.path, err)
				continue
			}
			var g, w []string
			for _, d := range des {
				g = append(g, d.Name+"="+strconv.Itoa(int(d.Inode)))
			}
			for _, m := range lsRE.FindAllStringSubmatch(outs[2*i+1], -1) {
				if m[3] != "." {
					w = append(w, m[3]+"="+m[1])
				}
			}
			sort.Strings(g)
			sort.Strings(w)
			if strings.Join(g, " ") != strings.Join(w, " ") {
				t.Errorf("%s: ReadDir %v, debugfs ls %v", it.path, g, w)
			}
		}
	}
	if files == 0 || bigFiles == 0 || dirs == 0 || links == 0 {
		t.Errorf("inline inodes: %d files (%d over 60 bytes), %d directories, %d symlinks; the tree must give all four", files, bigFiles, dirs, links)
	}
	t.Logf("%d inline files (%d over 60 bytes), %d inline directories, %d inline symlinks", files, bigFiles, dirs, links)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
