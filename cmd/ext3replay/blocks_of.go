package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

// blocks the other way round: a file (PATH, or --inode N) -> the blocks it owns, as debugfs
// blocks and stat list them.

// fileBlocks is one file's answer (JSON field names are stable).
type fileBlocks struct {
	Path   string     `json:"path,omitempty"` // the name asked for; empty for --inode
	Ino    uint32     `json:"ino"`
	Type   string     `json:"type"`
	Size   uint64     `json:"size"`
	Blocks uint64     `json:"blocks"` // owned: data plus map blocks, as inspect and debugfs stat's TOTAL count them
	Runs   []blockRun `json:"runs"`
	Xattr  uint64     `json:"xattr_block,omitempty"` // the extended-attribute block (may be shared, not counted)
}

// blockRun is a run of physically and logically consecutive blocks of one role.
type blockRun struct {
	Logical uint64 `json:"logical"` // first file block; for a map block, the first it can map
	Block   uint64 `json:"block"`
	Count   uint64 `json:"count"`
	Role    string `json:"role"` // as blocks names it: data, directory, symlink, journal, indirect, ...
}

// lookupPath resolves an absolute path from the root, name by name, without following symlinks.
func lookupPath(fsys *ext3fs.FS, path string) (uint32, error) {
	if !strings.HasPrefix(path, "/") {
		return 0, fmt.Errorf("%q: a path starts with /", path)
	}
	ino := uint32(ext3fs.RootIno)
	walked := ""
	for _, name := range strings.Split(path, "/") {
		if name == "" || name == "." {
			continue
		}
		in, err := fsys.ReadInode(ino)
		if err != nil {
			return 0, err
		}
		if in.Type() != ext3fs.TypeDir {
			return 0, fmt.Errorf("%s is a %s, not a directory", ops.QuotePath(walked), in.Type())
		}
		ents, err := fsys.ReadDir(in)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", ops.QuotePath(walked+"/"), err)
		}
		next := uint32(0)
		for _, e := range ents {
			if e.Name == name {
				next = e.Inode
				break
			}
		}
		walked += "/" + name
		if next == 0 {
			return 0, fmt.Errorf("%s: no such file or directory", ops.QuotePath(walked))
		}
		ino = next
	}
	return ino, nil
}

// blocksOf lists what inode ino owns.
func blocksOf(fsys *ext3fs.FS, path string, ino uint32) (*fileBlocks, error) {
	if ino == 0 || ino > fsys.SB.InodesCount {
		return nil, fmt.Errorf("inode %d: not in 1..%d", ino, fsys.SB.InodesCount)
	}
	in, err := fsys.ReadInode(ino)
	if err != nil {
		return nil, err
	}
	fb := &fileBlocks{Path: path, Ino: ino, Type: in.Type().String(), Size: in.Size, Runs: []blockRun{}, Xattr: in.FileACL}
	dataRole := "data"
	switch {
	case ino == fsys.SB.JournalInum && fsys.SB.HasJournal():
		dataRole = "journal"
	case in.Type() == ext3fs.TypeDir:
		dataRole = "directory"
	case in.Type() == ext3fs.TypeSymlink:
		dataRole = "symlink"
	}
	err = fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
		fb.Blocks++
		role := dataRole
		switch r.Kind {
		case ext3fs.BlockInd:
			role = "indirect"
			if ino == ext3fs.ResizeIno {
				role = "reserved gdt" // what the resize inode's map leaves are, as blocks BLOCK says
			}
		case ext3fs.BlockDInd:
			role = "double indirect"
		case ext3fs.BlockTInd:
			role = "triple indirect"
		case ext3fs.BlockExtent:
			role = "extent node"
		}
		if n := len(fb.Runs); n > 0 && r.Kind == ext3fs.BlockData {
			last := &fb.Runs[n-1]
			if last.Role == role && last.Block+last.Count == r.Phys && last.Logical+last.Count == r.Logical {
				last.Count++
				return nil
			}
		}
		fb.Runs = append(fb.Runs, blockRun{Logical: r.Logical, Block: r.Phys, Count: 1, Role: role})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return fb, nil
}

// writeFileBlocks prints the answers: text, one table per file, or one JSON array.
func writeFileBlocks(w io.Writer, format string, files []*fileBlocks) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(files)
	}
	span := func(first, n uint64) string {
		if n == 1 {
			return strconv.FormatUint(first, 10)
		}
		return fmt.Sprintf("%d-%d", first, first+n-1)
	}
	for i, f := range files {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := "inode " + strconv.FormatUint(uint64(f.Ino), 10)
		if f.Path != "" {
			name = ops.QuotePath(f.Path) + " (" + name + ")"
		}
		plural := "s"
		if f.Blocks == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "%s: %s, %d bytes, %d block%s", name, f.Type, f.Size, f.Blocks, plural)
		if f.Xattr != 0 {
			fmt.Fprintf(w, ", xattr block %d", f.Xattr)
		}
		fmt.Fprintln(w)
		if len(f.Runs) == 0 {
			continue
		}
		rows := make([][]string, 0, len(f.Runs))
		for _, r := range f.Runs {
			logical := span(r.Logical, r.Count)
			if r.Role != "data" && r.Role != "directory" && r.Role != "symlink" && r.Role != "journal" {
				logical = "maps from " + strconv.FormatUint(r.Logical, 10)
			}
			rows = append(rows, []string{logical, span(r.Block, r.Count), strconv.FormatUint(r.Count, 10), r.Role})
		}
		if err := render.Table(w, []string{"LOGICAL", "BLOCK", "COUNT", "ROLE"}, rows, []bool{true, true, true, false}); err != nil {
			return err
		}
	}
	return nil
}
