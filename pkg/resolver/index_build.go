package resolver

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// BuildIndex scans the file system's metadata (group descriptors, bitmaps, inode tables, block
// maps) and returns the owner of every block.
func BuildIndex(fs *ext3fs.FS) (*Index, error) {
	x, _, err := ixBuild(fs, true, false, nil, nil)
	return x, err
}

// BuildNames reads every directory and records the names of every inode.
func BuildNames(fs *ext3fs.FS) (*Names, error) {
	_, n, err := ixBuild(fs, false, true, nil, nil)
	return n, err
}

// Build does BuildIndex and BuildNames in one pass over the inode tables. The first structure
// that cannot be decoded is an error.
func Build(fs *ext3fs.FS) (*Index, *Names, error) {
	return ixBuild(fs, true, true, nil, nil)
}

// BuildTolerant is Build that decodes what can be decoded: an inode that cannot be decoded, a
// block map that cannot be walked to its end, a directory block whose entries do not chain
// are each a problem (an *ext3fs.FormatError naming the structure and its offset) and are left
// out as far as they are broken (a directory block keeps the entries before the bad one).
// Only a failure to read the image is an error.
func BuildTolerant(fs *ext3fs.FS) (*Index, *Names, []error, error) {
	var problems []error
	x, n, err := ixBuild(fs, true, true, &problems, nil)
	return x, n, problems, err
}

// InodeVisit is shown, by VisitInodes, every in-use inode the index build decodes, once its
// block map has been walked: blocks is the number of blocks ext3fs.WalkBlocks reported (data and
// the indirect or extent blocks mapping them, as debugfs stat counts them; not the xattr block)
// and err the walk's error (blocks then counts those before it). in is reused once visit returns.
type InodeVisit func(ino uint32, in *ext3fs.Inode, blocks uint64, err error)

// VisitInodes is the index build's pass over the inode tables (BuildTolerant's: tables read in
// large chunks up to the last inode in use, every block map walked, what cannot be decoded a
// problem) showing visit every inode in use, without building the index or the names: inspect
// lists every file's attributes and block count from it.
func VisitInodes(fs *ext3fs.FS, visit InodeVisit) ([]error, error) {
	var problems []error
	_, _, err := ixBuild(fs, false, false, &problems, visit)
	return problems, err
}

// ixTableChunk is how many bytes of an inode table the build reads at once.
const ixTableChunk = 128 << 10

// ixMaxPresize bounds the run list's room allocated ahead; ixMaxNamePages the names table's pages
// (32 KiB each, 64 MiB) allocated ahead: a damaged superblock or inode table cannot make the build
// reserve more than that before anything is found.
const (
	ixMaxPresize   = 1 << 22
	ixMaxNamePages = 2048
)

type ixBuilder struct {
	fs   *ext3fs.FS
	x    *Index
	runs []ixRun
	// problems: where not nil, decoding problems are collected here instead of failing.
	problems *[]error
	// inlineNames: entries of inline directories, named with the directory blocks' ones.
	inlineNames []ixName
	// visit: where not nil, shown every in-use inode with its block count (VisitInodes).
	visit InodeVisit
	// text holds the names read from directory blocks.
	text ixNameText
	// cur is the inode being walked and onBlockFn the walk's callback, bound once: a closure per
	// inode was a sixth of the build's garbage on a 100,000-file image.
	cur       ixWalk
	onBlockFn func(ext3fs.BlockRef) error
}

// ixWalk is the state of one inode's walk in the build.
type ixWalk struct {
	ino                         uint32
	in                          *ext3fs.Inode
	isDir, wantIndex, wantNames bool
	nblocks, walked             uint64
	dirBlocks                   *[]ixDirBlock
}

// ixName is one entry of an inline directory.
type ixName struct {
	dir  uint32
	dent dent
}

// problem records err if the build is tolerant and err is a decoding problem; it returns the
// error to fail with, nil to go on.
func (b *ixBuilder) problem(err error) error {
	var fe *ext3fs.FormatError
	if b.problems == nil || !errors.As(err, &fe) {
		return err
	}
	*b.problems = append(*b.problems, err)
	return nil
}

// add appends one block, extending the previous run when it continues it (blocks of a file
// mostly arrive in logical and physical order, so this keeps the run list short).
func (b *ixBuilder) add(blk uint64, o Owner) {
	if k := len(b.runs); k > 0 {
		p := &b.runs[k-1]
		if p.end() == blk && b.x.advance(p.o, p.n) == o {
			p.n++
			return
		}
	}
	b.runs = append(b.runs, ixRun{blk, 1, o})
}

func (b *ixBuilder) addRun(start, n uint64, o Owner) {
	if n > 0 {
		b.runs = append(b.runs, ixRun{start, n, o})
	}
}

// geometry records the per-group metadata: superblocks, GDTs, reserved GDT, bitmaps, tables.
func (b *ixBuilder) geometry() {
	fs := b.fs
	sb := fs.SB
	gdt := sb.GDTBlocks()
	per := uint32(fs.BlockSize() / sb.DescSize())
	for g := uint32(0); g < sb.GroupCount(); g++ {
		first := sb.GroupFirstBlock(g)
		if sb.GroupHasSuper(g) {
			superRole, gdtRole := RoleSuperBackup, RoleGDTBackup
			if g == 0 {
				superRole, gdtRole = RoleSuper, RoleGDT
			}
			b.addRun(first, 1, Owner{Role: superRole, Group: g})
			old := gdt
			if sb.HasMetaBG() {
				old = uint64(sb.FirstMetaBG)
			}
			b.addRun(first+1, old, Owner{Role: gdtRole, Group: g})
			resize := uint32(0)
			if sb.HasResizeInode() {
				resize = ext3fs.ResizeIno // the blocks are mapped by the resize inode, as icheck reports
			}
			b.addRun(first+1+old, uint64(sb.ReservedGDTBlocks), Owner{Role: RoleReservedGDT, Ino: resize, Group: g})
		}
		if sb.HasMetaBG() && g/per >= sb.FirstMetaBG {
			// meta_bg: descriptor block g/per lives in the first, second and last group of its
			// meta-group, right after the superblock copy if there is one.
			if i := g % per; i == 0 || i == 1 || i == per-1 {
				blk := first
				if sb.GroupHasSuper(g) {
					blk++
				}
				role := RoleGDTBackup
				if i == 0 {
					role = RoleGDT
				}
				b.addRun(blk, 1, Owner{Role: role, Group: g, Logical: uint64(g / per)})
			}
		}
		d := fs.Groups[g]
		b.addRun(d.BlockBitmap, 1, Owner{Role: RoleBlockBitmap, Group: g})
		b.addRun(d.InodeBitmap, 1, Owner{Role: RoleInodeBitmap, Group: g})
		b.addRun(d.InodeTable, sb.InodeTableBlocks(), Owner{Role: RoleInodeTable, Group: g,
			Logical: uint64(g)*uint64(sb.InodesPerGroup) + 1})
	}
}

// ixDirBlock is one directory block to read for names.
type ixDirBlock struct {
	phys uint64
	ino  uint32
}

func ixBuild(fs *ext3fs.FS, wantIndex, wantNames bool, problems *[]error, visit InodeVisit) (*Index, *Names, error) {
	sb := fs.SB
	bs := fs.BlockSize()
	isz := sb.InodeSize()
	b := &ixBuilder{fs: fs, x: NewIndex(sb.BlocksCount, bs/isz), problems: problems, visit: visit}
	// The small buffers first: where a collection has left free memory at the end of the heap,
	// they take it, and the run list below starts in fresh memory. Starting in used memory, it
	// would be zeroed by the runtime page by page before the huge page advice could apply
	// (2,000 more page faults; 4 one-shot builds in 50 against none in 50).
	bitmap := make([]byte, bs)
	per := max(1, ixTableChunk/isz) // inodes read at once
	table := make([]byte, per*isz)
	if wantNames {
		// The names' bytes (an estimate: about 16 bytes a name), allocated before the run list:
		// the collection these two allocations start then counts both, and its goal leaves room
		// for the names table. Allocated after the inode pass, they pushed the heap over that
		// goal, and a second collection read the untouched part of the names table.
		used := uint64(sb.InodesCount - min(sb.FreeInodesCount, sb.InodesCount))
		b.text.size = int(min(max(used*16, 64<<10), ixNameTextMax))
		if b.text.size > 1<<20 {
			b.text.size = (b.text.size + 2<<20 - 1) &^ (2<<20 - 1) // whole huge pages
		}
		b.text.buf = hugebuf.Slice[byte](b.text.size)[:0]
	}
	if wantIndex {
		// Most inodes make one run; presizing avoids regrowing a slice of 100k+ runs, and the
		// index keeps this memory (its chunks are windows of it), so it is advised for huge pages:
		// 4 MB of 4 KiB pages was a thousand page faults.
		// The presize trusts the superblock's free inode count only up to ixMaxPresize runs
		// (160 MB): past that the list grows as runs come.
		used := uint64(sb.InodesCount - min(sb.FreeInodesCount, sb.InodesCount))
		b.runs = hugebuf.Slice[ixRun](int(min(used+used/8+8*uint64(sb.GroupCount()), ixMaxPresize)))[:0]
	}
	if wantIndex {
		b.geometry()
	}
	var dirBlocks []ixDirBlock
	in := new(ext3fs.Inode) // reused: nothing keeps a reference past b.inode
	// namePages counts the pages of the names table (linkPageSize inodes each) that inodes in use
	// fall in: the names of a sound file system go to those inodes.
	namePages, lastPage := 0, ^uint32(0)
	csum := sb.FeatureRoCompat&(ext3fs.RoCompatGDTCsum|ext3fs.RoCompatMetadataCsum) != 0
	for g := uint32(0); g < sb.GroupCount(); g++ {
		d := fs.Groups[g]
		if csum && d.Flags&ext3fs.BGInodeUninit != 0 {
			continue // no inode of this group was ever used
		}
		if err := fs.ReadBlock(d.InodeBitmap, bitmap); err != nil {
			return nil, nil, err
		}
		// Read the inode table only up to the last inode the bitmap marks in use.
		ipg := int(sb.InodesPerGroup)
		if csum && d.ItableUnused > 0 && int(d.ItableUnused) < ipg {
			ipg -= int(d.ItableUnused)
		}
		used := 0
		for i := ipg - 1; i >= 0; i-- {
			if bitmap[i/8]&(1<<(i%8)) != 0 {
				used = i + 1
				break
			}
		}
		if used == 0 {
			continue
		}
		// The table is read in slices of ixTableChunk bytes into one small buffer: a buffer for a
		// whole table (2 MiB for 8,192 inodes of 256 bytes) was a fifth of the build's fresh
		// memory, and each of its pages costs a page fault the first time.
		pos := int64(d.InodeTable) * int64(bs)
		for lo := 0; lo < used; lo += per {
			hi := min(used, lo+per)
			chunk := table[:(hi-lo)*isz]
			if _, err := fs.ReaderAt().ReadAt(chunk, pos+int64(lo*isz)); err != nil {
				return nil, nil, &ext3fs.FormatError{Struct: fmt.Sprintf("inode table of group %d", g), Offset: pos, Msg: "read failed", Err: err}
			}
			for i := lo; i < hi; i++ {
				if bitmap[i/8]&(1<<(i%8)) == 0 {
					continue
				}
				ino := g*sb.InodesPerGroup + uint32(i) + 1
				raw := chunk[(i-lo)*isz : (i-lo+1)*isz]
				if err := fs.DecodeInodeInto(ino, raw, pos+int64(i*isz), in); err != nil {
					if err := b.problem(fmt.Errorf("inode %d: %w", ino, err)); err != nil {
						return nil, nil, err
					}
					continue
				}
				if !inUse(ino, in) {
					continue
				}
				if p := ino / linkPageSize; p != lastPage {
					namePages, lastPage = namePages+1, p
				}
				if wantNames && in.Type() == ext3fs.TypeDir && in.HasInlineData() {
					// An inline directory's entries live in the inode itself.
					ents, err := inlineDents(in, raw, sb.HasFiletype())
					if err != nil {
						if err := b.problem(fmt.Errorf("inode %d: %w", ino, err)); err != nil {
							return nil, nil, err
						}
					}
					for _, d := range ents {
						b.inlineNames = append(b.inlineNames, ixName{dir: ino, dent: d})
					}
				}
				if err := b.inode(ino, in, wantIndex, wantNames, &dirBlocks); err != nil {
					if err := b.problem(err); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	var x *Index
	if wantIndex {
		x = b.x
		x.buildFrom(b.runs)
		b.runs = nil
	}
	var names *Names
	if wantNames {
		var err error
		if names, err = b.readNames(dirBlocks, namePages); err != nil {
			return nil, nil, err
		}
	}
	return x, names, nil
}

// inUse: the inode bitmap says allocated, and the inode owns blocks. Reserved inodes
// 1..first_ino-1 are always "allocated"; the bad-blocks inode has mode 0 but may own blocks,
// the unused ones are all zero.
func inUse(ino uint32, in *ext3fs.Inode) bool {
	if ino == ext3fs.BadBlocksIno {
		return in.Block != [15]uint32{}
	}
	return in.Allocated()
}

func (b *ixBuilder) inode(ino uint32, in *ext3fs.Inode, wantIndex, wantNames bool, dirBlocks *[]ixDirBlock) error {
	fs := b.fs
	if wantIndex && in.FileACL != 0 && in.FileACL < fs.SB.BlocksCount {
		b.add(in.FileACL, Owner{Role: RoleXattr, Ino: ino})
	}
	isDir := in.Type() == ext3fs.TypeDir
	if !wantIndex && !isDir && b.visit == nil {
		return nil
	}
	if b.onBlockFn == nil {
		b.onBlockFn = b.onBlock
	}
	b.cur = ixWalk{ino: ino, in: in, isDir: isDir, wantIndex: wantIndex, wantNames: wantNames,
		nblocks: (in.Size + uint64(fs.BlockSize()) - 1) / uint64(fs.BlockSize()), dirBlocks: dirBlocks}
	err := fs.WalkBlocks(in, b.onBlockFn)
	walked := b.cur.walked
	b.cur = ixWalk{}
	if b.visit != nil {
		b.visit(ino, in, walked, err)
	}
	if err != nil {
		return fmt.Errorf("inode %d: %w", ino, err)
	}
	return nil
}

// onBlock is the walk's callback for the inode in b.cur.
func (b *ixBuilder) onBlock(r ext3fs.BlockRef) error {
	c := &b.cur
	c.walked++
	if c.wantNames && c.isDir && r.Kind == ext3fs.BlockData && r.Logical < c.nblocks {
		*c.dirBlocks = append(*c.dirBlocks, ixDirBlock{r.Phys, c.ino})
	}
	if !c.wantIndex {
		return nil
	}
	if c.ino == ext3fs.ResizeIno && r.Kind != ext3fs.BlockDInd {
		// The resize inode's IND and data blocks are the primary and backup reserved GDT
		// blocks, already recorded by geometry() with their group.
		return nil
	}
	b.add(r.Phys, Owner{Role: ixRoleFor(b.fs, c.ino, c.in, r.Kind), Ino: c.ino, Logical: r.Logical})
	return nil
}

// readNames reads every directory block in disk order and records each entry's name.
func (b *ixBuilder) readNames(blocks []ixDirBlock, namePages int) (*Names, error) {
	fs := b.fs
	slices.SortFunc(blocks, func(a, b ixDirBlock) int { return cmp.Compare(a.phys, b.phys) })
	n := newNamesSized(min(namePages, ixMaxNamePages))
	for _, in := range b.inlineNames {
		n.Add(in.dir, in.dent.name, in.dent.ino)
	}
	buf := make([]byte, fs.BlockSize())
	ft := fs.SB.HasFiletype()
	for _, db := range blocks {
		if err := fs.ReadBlock(db.phys, buf); err != nil {
			return nil, err
		}
		err := ext3fs.WalkDirBlock(buf, ft, func(e *ext3fs.DirEntry, name []byte) error {
			if string(name) != "." && string(name) != ".." {
				n.Add(db.ino, b.text.str(name), e.Inode)
			}
			return nil
		})
		if err != nil {
			if err := b.problem(fmt.Errorf("directory inode %d, block %d: %w", db.ino, db.phys, err)); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// ixNameText holds the names the build reads from directory blocks, back to back in buffers of
// huge pages, each name a string over its own bytes (unsafe.String). That is sound because the
// bytes are written once, before the string exists, and never again: a buffer is only appended
// to within its capacity, and a full one is left as it is for a new one. A string per name was
// 100,000 allocations on a 100,000-file image, and a string per directory block still 1.5 MB of
// fresh 4 KiB pages (370 page faults).
type ixNameText struct {
	buf  []byte
	size int // of a new buffer
}

// ixNameTextMax bounds the size of one buffer of names.
const ixNameTextMax = 16 << 20

func (t *ixNameText) str(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	if cap(t.buf)-len(t.buf) < len(name) {
		t.buf = hugebuf.Slice[byte](max(t.size, len(name), 4096))[:0]
	}
	off := len(t.buf)
	t.buf = append(t.buf, name...)
	return unsafe.String(&t.buf[off], len(name))
}
