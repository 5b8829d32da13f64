package main

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// inspectListing is what listing a file system's files found, before anything is printed: the
// files in walk order, the problems in the order met, and the error that ended the walk early.
// Listing has no side effects, so the fast listing can give way to the walk at any point.
type inspectListing struct {
	files    []inspectFile
	problems []inspectProblem
	stop     error
}

type inspectProblem struct {
	path string
	err  error
}

// errStopAtProblem ends a listing at its first problem when --keep-going is not given (the
// problem, printed by runInspect, is the error).
var errStopAtProblem = errors.New("stopped at the first problem")

// inspectLister collects one listing. Both listings go through add, so a file's row is made by
// the same code whichever way its inode and block count were found.
type inspectLister struct {
	fsys      *ext3fs.FS
	keepGoing bool
	prog      *progress
	inspectListing
	// Each inode's blocks are counted once (hard links reuse the count), and distinct inodes
	// cannot own more blocks together than the file system has: inodes cross-linked to one
	// huge map would otherwise each be walked in full.
	counted map[uint32]*blockCount
	owned   uint64
}

// blockCount is an inode's block count, once counted.
type blockCount struct {
	n    uint64
	done bool
}

// newInspectLister starts a listing of about names names.
func newInspectLister(fsys *ext3fs.FS, keepGoing bool, prog *progress, names int) *inspectLister {
	return &inspectLister{fsys: fsys, keepGoing: keepGoing, prog: prog, counted: map[uint32]*blockCount{},
		inspectListing: inspectListing{files: hugebuf.Slice[inspectFile](names)[:0]}}
}

// countOf is where the block count of an inode read on its own (not visited by the index build)
// is kept.
func (l *inspectLister) countOf(ino uint32) *blockCount {
	c := l.counted[ino]
	if c == nil {
		c = new(blockCount)
		l.counted[ino] = c
	}
	return c
}

// problem records what cannot be decoded (a directory block, an entry naming an inode out of
// range, a file's block map): without --keep-going it ends the listing.
func (l *inspectLister) problem(path string, err error) error {
	l.problems = append(l.problems, inspectProblem{path, err})
	if !l.keepGoing {
		return errStopAtProblem
	}
	return nil
}

// add lists one name of inode ino; count gives the blocks its map walk reports, called once per
// inode (not per name) and kept in bc.
func (l *inspectLister) add(path string, ino uint32, in *ext3fs.Inode, bc *blockCount, count func() (uint64, error)) error {
	l.prog.Add(1)
	f := inspectFile{Path: path, Ino: ino, Type: in.Type().String(), Mode: permString(in.Perm()),
		Links: in.LinksCount, Size: in.Size, Htree: in.IsHtree()}
	if bc.done {
		f.Blocks = bc.n
	} else {
		n, err := count()
		if err != nil {
			return l.problem(path, fmt.Errorf("inode %d: %w", ino, err))
		}
		f.Blocks = n
		*bc = blockCount{n, true}
		if l.owned += n; l.owned > l.fsys.SB.BlocksCount {
			return fmt.Errorf("%s (inode %d): the inodes walked so far map %d blocks, more than the file system's %d (cross-linked block maps)", path, ino, l.owned, l.fsys.SB.BlocksCount)
		}
	}
	switch in.Type() {
	case ext3fs.TypeSymlink:
		t, err := l.fsys.ReadLink(in)
		if err != nil {
			return l.problem(path, fmt.Errorf("inode %d: %w", ino, err))
		}
		f.Target = t
	case ext3fs.TypeChar, ext3fs.TypeBlock:
		ma, mi := in.Device()
		f.Device = strconv.FormatUint(uint64(ma), 10) + "," + strconv.FormatUint(uint64(mi), 10)
	}
	l.files = append(l.files, f)
	return nil
}

// permString is fmt.Sprintf("%04o", perm), made once for each of the 4096 permissions: a
// Sprintf per file was a fifth of the listing's time.
func permString(perm uint16) string {
	permOnce.Do(func() {
		for p := range permStrings {
			permStrings[p] = fmt.Sprintf("%04o", p)
		}
	})
	return permStrings[perm&07777]
}

var (
	permOnce    sync.Once
	permStrings [010000]string
)

// walkCount counts in's blocks by walking its map.
func walkCount(fsys *ext3fs.FS, in *ext3fs.Inode) func() (uint64, error) {
	return func() (uint64, error) {
		var n uint64
		err := fsys.WalkBlocks(in, func(ext3fs.BlockRef) error { n++; return nil })
		return n, err
	}
}

// listFilesWalk lists every name reachable from the root by walking the tree (ext3fs.WalkTolerant):
// each inode read on its own and each map walked again. It is the reference listFilesIndexed
// must agree with, and what inspect falls back to where that cannot answer exactly.
func listFilesWalk(fsys *ext3fs.FS, keepGoing bool, prog *progress) inspectListing {
	l := newInspectLister(fsys, keepGoing, prog, 0)
	l.stop = fsys.WalkTolerant(func(path string, ino uint32, in *ext3fs.Inode) error {
		return l.add(path, ino, in, l.countOf(ino), walkCount(fsys, in))
	}, l.problem)
	return l.inspectListing
}

// visitedInodes holds the inodes the index build decoded, found by inode number through pages
// of 1024 slots allocated where inodes are in use (memory follows the inodes in use, not the
// inode count the superblock claims).
type visitedInodes struct {
	recs  []visitedInode
	pages []*[1024]int32 // index+1 into recs; 0: not visited
	// full holds the whole inode of directories and symlinks, read again for their entries and
	// targets; the others keep what a row shows (a fifth of the memory, which is most of the
	// cost here: 100,000 whole inodes are 20 MB).
	full []ext3fs.Inode
	// errs holds the map-walk errors (rare), so that recs holds no pointers for the garbage
	// collector to scan.
	errs map[uint32]error
}

// visitedInode is what inspect lists of an inode: its type and permissions, links, size and
// flags, the device number, the block count and whether its map walk failed.
type visitedInode struct {
	mode, links uint16
	flags       uint32
	size        uint64
	blocks      uint64
	dev         [2]uint32 // i_block[0] and [1]
	full        int32     // index+1 into full; 0 for the types kept here alone
	err         bool      // errs has the map walk's error
	counted     blockCount
}

func (v *visitedInodes) add(ino uint32, in *ext3fs.Inode, blocks uint64, err error) {
	r := visitedInode{mode: in.Mode, links: in.LinksCount, flags: in.Flags, size: in.Size, blocks: blocks,
		dev: [2]uint32{in.Block[0], in.Block[1]}, err: err != nil}
	if t := in.Type(); t == ext3fs.TypeDir || t == ext3fs.TypeSymlink {
		v.full = append(v.full, *in)
		r.full = int32(len(v.full))
	}
	v.recs = append(v.recs, r)
	if err != nil {
		if v.errs == nil {
			v.errs = map[uint32]error{}
		}
		v.errs[ino] = err
	}
	p := int(ino / 1024)
	if p >= len(v.pages) {
		v.pages = append(v.pages, make([]*[1024]int32, p+1-len(v.pages))...)
	}
	if v.pages[p] == nil {
		v.pages[p] = new([1024]int32)
	}
	v.pages[p][ino%1024] = int32(len(v.recs))
}

// inode is r as an Inode: the whole one for directories and symlinks, else tmp filled with the
// fields inspect reads of the others (type, permissions, links, size, flags, device number).
func (v *visitedInodes) inode(r *visitedInode, tmp *ext3fs.Inode) *ext3fs.Inode {
	if r.full > 0 {
		return &v.full[r.full-1]
	}
	*tmp = ext3fs.Inode{Mode: r.mode, LinksCount: r.links, Size: r.size, Flags: r.flags}
	tmp.Block[0], tmp.Block[1] = r.dev[0], r.dev[1]
	return tmp
}

func (v *visitedInodes) get(ino uint32) *visitedInode {
	p := int(ino / 1024)
	if p >= len(v.pages) || v.pages[p] == nil {
		return nil
	}
	if i := v.pages[p][ino%1024]; i > 0 {
		return &v.recs[i-1]
	}
	return nil
}

// listFilesIndexed is listFilesWalk from the index build's one pass over the inode tables
// (resolver.VisitInodes): every inode in use is decoded from inode tables read in large
// chunks, with the block count of its map walk, so walking the tree only reads directories. The
// walk order, hard links, the problems met and the order they are met in are those of
// listFilesWalk; where it cannot say what that would (the root, or a directory block that cannot
// be read or decoded, whose errors ext3fs words itself), ok is false and nothing was printed.
func listFilesIndexed(fsys *ext3fs.FS, keepGoing bool, prog *progress) (_ inspectListing, ok bool) {
	// Room for the inodes the superblock counts in use, up to a bound: a hostile count must not
	// reserve gigabytes (past it the records grow as they come). In advised huge pages, as the
	// rows below.
	v := &visitedInodes{recs: hugebuf.Slice[visitedInode](int(min(fsys.SB.InodesCount-min(fsys.SB.FreeInodesCount, fsys.SB.InodesCount), 1<<18)))[:0]}
	if _, err := resolver.VisitInodes(fsys, v.add); err != nil {
		return inspectListing{}, false
	}
	root := v.get(ext3fs.RootIno)
	if root == nil || root.full == 0 || v.full[root.full-1].Type() != ext3fs.TypeDir {
		return inspectListing{}, false // the walk words these errors
	}
	// The bar counts the names once the listing stands: were it to give way to the walk, the
	// walk counts them again.
	// Most inodes in use have one name: room for them, and a quarter more for hard links, saves
	// regrowing a 100,000-row slice, whose copy into fresh pages cost 0.1 s of page faults (room
	// never written costs nothing). The rows are still 15 MB of fresh memory (and the records
	// above 5 MB): in advised huge pages (hugebuf) inspect of a 100,000-file image went from
	// 0.186 to 0.135 s with --format json, 0.240 to 0.185 s as text (11 alternating runs).
	l := newInspectLister(fsys, keepGoing, nil, len(v.recs)+len(v.recs)/4+64)
	w := &indexedWalk{l: l, v: v, seen: map[uint32]bool{ext3fs.RootIno: true}, buf: make([]byte, fsys.BlockSize())}
	rootIn := &v.full[root.full-1]
	if err := l.add("/", ext3fs.RootIno, rootIn, &root.counted, v.count(ext3fs.RootIno, root)); err != nil {
		l.stop = err
	} else if err := w.dir("/", rootIn); err == errCannotList {
		return inspectListing{}, false
	} else if err != nil {
		l.stop = err
	}
	prog.Add(int64(len(l.files)))
	return l.inspectListing, true
}

// count is the blocks and map-walk error of r, inode ino.
func (v *visitedInodes) count(ino uint32, r *visitedInode) func() (uint64, error) {
	return func() (uint64, error) {
		if r.err {
			return r.blocks, v.errs[ino]
		}
		return r.blocks, nil
	}
}

// errCannotList: the indexed walk met something only the tree walk words exactly.
var errCannotList = errors.New("the indexed listing cannot answer here")

type indexedWalk struct {
	l    *inspectLister
	v    *visitedInodes
	seen map[uint32]bool
	buf  []byte
	tmp  ext3fs.Inode // the inode of a file kept in part (add keeps no reference to it)
	// ents and arena are a stack: the entries of the directories being walked, from the root
	// down, each directory's names in arena (so the names of 100,000 entries are not 100,000
	// strings; each path is one).
	ents  []dirEnt
	arena []byte
}

// dirEnt is one directory entry: its name is arena[off:off+n].
type dirEnt struct {
	off int
	n   int
	ino uint32
}

func (w *indexedWalk) push(name []byte, ino uint32) {
	w.ents = append(w.ents, dirEnt{len(w.arena), len(name), ino})
	w.arena = append(w.arena, name...)
}

func (w *indexedWalk) name(e dirEnt) []byte { return w.arena[e.off : e.off+e.n] }

// dir lists directory din's entries (path dir, ending in "/") as ext3fs.WalkTolerant does:
// sorted by name (stably: entries with equal names in directory order), "." and ".." left out,
// each subdirectory descended the first time it is met.
func (w *indexedWalk) dir(dir string, din *ext3fs.Inode) error {
	fsys, l := w.l.fsys, w.l
	base, abase := len(w.ents), len(w.arena)
	defer func() { w.ents, w.arena = w.ents[:base], w.arena[:abase] }()
	if din.HasInlineData() {
		ents, err := fsys.ReadDir(din)
		if err != nil {
			if err := l.problem(dir, err); err != nil {
				return err
			}
		}
		for _, e := range ents {
			w.push([]byte(e.Name), e.Inode)
		}
	} else if !w.readDir(din) {
		return errCannotList
	}
	end := len(w.ents)
	seg := w.ents[base:end]
	sort.SliceStable(seg, func(a, b int) bool { return bytes.Compare(w.name(seg[a]), w.name(seg[b])) < 0 })
	// Subdirectories push their entries past end (and may move ents and arena): index afresh.
	for k := base; k < end; k++ {
		e := w.ents[k]
		name := w.name(e)
		if string(name) == "." || string(name) == ".." {
			continue
		}
		p := dir + string(name)
		var in *ext3fs.Inode
		var bc *blockCount
		var count func() (uint64, error)
		if r := w.v.get(e.ino); r != nil {
			in, bc, count = w.v.inode(r, &w.tmp), &r.counted, w.v.count(e.ino, r)
		} else {
			// Not in use by the bitmap or the inode's own fields, or not decodable: the walk
			// reads it all the same (and words the error if it cannot).
			var err error
			if in, err = fsys.ReadInode(e.ino); err != nil {
				if err := l.problem(p, err); err != nil {
					return err
				}
				continue
			}
			bc, count = l.countOf(e.ino), walkCount(fsys, in)
		}
		if err := l.add(p, e.ino, in, bc, count); err != nil {
			return err
		}
		if in.Type() == ext3fs.TypeDir && !w.seen[e.ino] {
			w.seen[e.ino] = true
			if err := w.dir(p+"/", in); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDir pushes a block-mapped directory's entries in the order the tree walk reads them (its
// blocks in map order, up to i_size); false at the first block map, block or entry that cannot
// be read or decoded.
func (w *indexedWalk) readDir(din *ext3fs.Inode) bool {
	fsys := w.l.fsys
	bs := uint64(fsys.BlockSize())
	nblocks := (din.Size + bs - 1) / bs
	ft := fsys.SB.HasFiletype()
	err := fsys.WalkBlocks(din, func(r ext3fs.BlockRef) error {
		if r.Kind != ext3fs.BlockData || r.Logical >= nblocks {
			return nil
		}
		if err := fsys.ReadBlock(r.Phys, w.buf); err != nil {
			return err
		}
		return ext3fs.WalkDirBlock(w.buf, ft, func(e *ext3fs.DirEntry, name []byte) error {
			w.push(name, e.Inode)
			return nil
		})
	})
	return err == nil
}

// inspectCrossCheck, set by the tests, makes every inspect list the files both ways and fail
// unless the two listings agree.
var inspectCrossCheck bool

// listFiles lists the files of fsys: through the index build, or by walking the tree where that
// cannot answer exactly.
func listFiles(fsys *ext3fs.FS, keepGoing bool, prog *progress) (inspectListing, error) {
	l, ok := listFilesIndexed(fsys, keepGoing, prog)
	if !inspectCrossCheck {
		if !ok {
			l = listFilesWalk(fsys, keepGoing, prog)
		}
		return l, nil
	}
	ref := listFilesWalk(fsys, keepGoing, nil)
	if !ok {
		return ref, nil
	}
	if d := diffListings(l, ref); d != "" {
		return l, fmt.Errorf("inspect cross-check: the indexed listing differs from the tree walk: %s", d)
	}
	return l, nil
}

// diffListings describes the first difference between two listings ("" if none).
func diffListings(a, b inspectListing) string {
	for i := 0; i < max(len(a.files), len(b.files)); i++ {
		switch {
		case i >= len(a.files):
			return fmt.Sprintf("file %d: missing, walk %+v", i, b.files[i])
		case i >= len(b.files):
			return fmt.Sprintf("file %d: %+v, walk has no more", i, a.files[i])
		case a.files[i] != b.files[i]:
			return fmt.Sprintf("file %d: %+v, walk %+v", i, a.files[i], b.files[i])
		}
	}
	problems := func(l inspectListing) string {
		var s []byte
		for _, p := range l.problems {
			s = fmt.Appendf(s, "%q: %v; ", p.path, p.err)
		}
		return string(s)
	}
	if pa, pb := problems(a), problems(b); pa != pb {
		return fmt.Sprintf("problems %s, walk %s", pa, pb)
	}
	if fmt.Sprint(a.stop) != fmt.Sprint(b.stop) {
		return fmt.Sprintf("stopped with %v, walk with %v", a.stop, b.stop)
	}
	return ""
}

// listInspectFiles is listFiles; the tests swap in the tree walk alone to compare outputs.
var listInspectFiles = listFiles
