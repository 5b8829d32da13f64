package main

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// walkAround is ext3fs.FS.WalkTolerant that also goes past one bad block of a directory: the
// entries of the directory's other blocks are still walked. (ext3fs.ReadDir stops at the
// first block that does not decode, so inspect --keep-going lost a whole directory to one bad
// block.) problem is called with the path and the error of each directory block, entry or
// file that cannot be decoded; a non-nil return stops the walk with that error.
func walkAround(fsys *ext3fs.FS, fn func(path string, ino uint32, in *ext3fs.Inode) error, problem func(path string, err error) error) error {
	root, err := fsys.ReadInode(ext3fs.RootIno)
	if err != nil {
		return err
	}
	if root.Type() != ext3fs.TypeDir {
		return fsys.Walk(fn) // Walk names what the root is instead
	}
	seen := map[uint32]bool{ext3fs.RootIno: true}
	if err := fn("/", ext3fs.RootIno, root); err != nil {
		return err
	}
	return walkAroundDir(fsys, "/", root, seen, fn, problem)
}

func walkAroundDir(fsys *ext3fs.FS, dir string, din *ext3fs.Inode, seen map[uint32]bool,
	fn func(string, uint32, *ext3fs.Inode) error, problem func(string, error) error) error {
	ents, errs := readDirAround(fsys, din)
	for _, err := range errs {
		if err := problem(dir, err); err != nil {
			return err
		}
	}
	sort.SliceStable(ents, func(a, b int) bool { return ents[a].Name < ents[b].Name })
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		p := dir + e.Name
		in, err := fsys.ReadInode(e.Inode)
		if err != nil {
			if err := problem(p, err); err != nil {
				return err
			}
			continue
		}
		if err := fn(p, e.Inode, in); err != nil {
			return err
		}
		if in.Type() == ext3fs.TypeDir && !seen[e.Inode] {
			seen[e.Inode] = true
			if err := walkAroundDir(fsys, p+"/", in, seen, fn, problem); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDirAround is ext3fs.FS.ReadDir block by block: a block that cannot be read or decoded
// gives an error (naming the block and byte offset, as ReadDir's does) and the entries before
// the bad one in it; the other blocks are read all the same. A block map that cannot be walked
// ends the directory there.
func readDirAround(fsys *ext3fs.FS, in *ext3fs.Inode) ([]ext3fs.DirEntry, []error) {
	if in.HasInlineData() {
		ents, err := fsys.ReadDir(in)
		if err != nil {
			return ents, []error{err}
		}
		return ents, nil
	}
	bs := uint64(fsys.BlockSize())
	nblocks := (in.Size + bs - 1) / bs
	buf := make([]byte, bs)
	ft := fsys.SB.HasFiletype()
	var out []ext3fs.DirEntry
	var errs []error
	err := fsys.WalkBlocks(in, func(r ext3fs.BlockRef) error {
		if r.Kind != ext3fs.BlockData || r.Logical >= nblocks {
			return nil
		}
		if err := fsys.ReadBlock(r.Phys, buf); err != nil {
			errs = append(errs, err)
			return nil
		}
		ents, err := ext3fs.ParseDirBlock(buf, ft)
		out = append(out, ents...)
		if err != nil {
			var fe *ext3fs.FormatError
			if errors.As(err, &fe) {
				fe.Offset += int64(r.Phys) * int64(bs)
				fe.Struct = fmt.Sprintf("directory entry (block %d, logical %d)", r.Phys, r.Logical)
			}
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errs
}
