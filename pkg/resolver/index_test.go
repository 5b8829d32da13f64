package resolver

import (
	"math/rand"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// ixModel is the obvious per-block array the run index must agree with.
type ixModel struct {
	x         *Index
	owners    []Owner
	maxChunks int
}

func (m *ixModel) set(start, n uint64, o Owner) {
	m.x.Set(start, n, o)
	for i := uint64(0); i < n; i++ {
		if o.Role == RoleFree {
			m.owners[start+i] = Owner{}
		} else {
			m.owners[start+i] = m.x.advance(o, i)
		}
	}
}

func (m *ixModel) clear(start, n uint64) {
	m.x.Clear(start, n)
	for i := uint64(0); i < n; i++ {
		m.owners[start+i] = Owner{}
	}
}

func (m *ixModel) check(t *testing.T, step int) {
	t.Helper()
	for b := range m.owners {
		if got := m.x.Lookup(uint64(b)); got != m.owners[b] {
			t.Fatalf("step %d: Lookup(%d) = %+v, want %+v", step, b, got, m.owners[b])
		}
	}
	// Runs are sorted, disjoint, non-empty, and each agrees with the ixModel.
	var prevEnd uint64
	m.x.Runs(func(start, n uint64, o Owner) bool {
		if n == 0 || start < prevEnd {
			t.Fatalf("step %d: bad run %d+%d after end %d", step, start, n, prevEnd)
		}
		prevEnd = start + n
		return true
	})
	if len(m.x.keys) != len(m.x.chunks) {
		t.Fatalf("step %d: %d keys for %d chunks", step, len(m.x.keys), len(m.x.chunks))
	}
	for c, rs := range m.x.chunks {
		if len(rs) == 0 || len(rs) > ixMaxChunk {
			t.Fatalf("step %d: chunk of %d runs", step, len(rs))
		}
		if m.x.keys[c] != rs[0].start {
			t.Fatalf("step %d: key %d of chunk %d starting at %d", step, m.x.keys[c], c, rs[0].start)
		}
	}
	if len(m.x.chunks) > m.maxChunks {
		m.maxChunks = len(m.x.chunks)
	}
	// LookupRun agrees with walking the ixModel.
	for b := 0; b < len(m.owners); b += 1 + b%7 {
		o, n := m.x.LookupRun(uint64(b))
		if o != m.owners[b] || n == 0 {
			t.Fatalf("step %d: LookupRun(%d) = %+v,%d; want %+v", step, b, o, n, m.owners[b])
		}
		for k := uint64(1); k < n && b+int(k) < len(m.owners); k++ {
			want := Owner{}
			if o.Role != RoleFree {
				want = m.x.advance(o, k)
			}
			if m.owners[b+int(k)] != want {
				t.Fatalf("step %d: LookupRun(%d) claims %d blocks but block %d is %+v", step, b, n, b+int(k), m.owners[b+int(k)])
			}
		}
	}
}

// TestIndexRandomOps drives Set/Clear with random, overlapping ranges and compares every block
// with a per-block ixModel after each step.
func TestIndexRandomOps(t *testing.T) {
	const blocks = 20000
	rng := rand.New(rand.NewSource(1))
	m := &ixModel{x: NewIndex(blocks, 8), owners: make([]Owner, blocks)}
	roles := []Role{RoleData, RoleDir, RoleInd, RoleInodeTable, RoleJournal, RoleSuper}
	for step := 0; step < 6000; step++ {
		start := uint64(rng.Intn(blocks))
		n := uint64(1 + rng.Intn(40))
		if rng.Intn(10) == 0 {
			n = uint64(rng.Intn(400))
		}
		n = min(n, blocks-start)
		switch r := rng.Intn(10); {
		case r < 2:
			m.clear(start, n)
		default:
			o := Owner{Role: roles[rng.Intn(len(roles))], Ino: uint32(1 + rng.Intn(5)), Logical: uint64(rng.Intn(100))}
			m.set(start, n, o)
		}
		// Around the change, where the lookups of the step before left the hint.
		for _, b := range []uint64{start - min(start, 1), start, start + n/2, start + n, start + n + 1} {
			if b < blocks {
				if got := m.x.Lookup(b); got != m.owners[b] {
					t.Fatalf("step %d: Lookup(%d) after the change = %+v, want %+v", step, b, got, m.owners[b])
				}
			}
		}
		if step%200 == 0 || step > 5990 {
			m.check(t, step)
		}
	}
	if m.maxChunks < 3 {
		t.Fatalf("at most %d chunks: the test never split one", m.maxChunks)
	}
}

// TestIndexMerges: appending a file block by block keeps one run, and a split heals.
func TestIndexMerges(t *testing.T) {
	x := NewIndex(1000, 4)
	for i := uint64(0); i < 100; i++ {
		x.Set(200+i, 1, Owner{Role: RoleData, Ino: 12, Logical: i})
	}
	if x.Len() != 1 {
		t.Fatalf("100 contiguous appends: %d runs, want 1", x.Len())
	}
	x.Set(250, 1, Owner{Role: RoleInd, Ino: 12, Logical: 12})
	if x.Len() != 3 {
		t.Fatalf("after overwriting a middle block: %d runs, want 3", x.Len())
	}
	x.Set(250, 1, Owner{Role: RoleData, Ino: 12, Logical: 50})
	if x.Len() != 1 {
		t.Fatalf("after restoring it: %d runs, want 1", x.Len())
	}
	if o := x.Lookup(299); o != (Owner{Role: RoleData, Ino: 12, Logical: 99}) {
		t.Fatalf("Lookup(299) = %+v", o)
	}
	x.Clear(0, 1000)
	if x.Len() != 0 || x.Lookup(250).Role != RoleFree {
		t.Fatalf("Clear of everything left %d runs", x.Len())
	}

	// Clearing and then overwriting a range that spans whole chunks.
	m := &ixModel{x: NewIndex(5000, 4), owners: make([]Owner, 5000)}
	for b := uint64(0); b < 5000; b += 2 {
		m.set(b, 1, Owner{Role: RoleInd, Ino: uint32(b)})
	}
	m.check(t, 0)
	m.clear(700, 2000)
	m.check(t, 1)
	m.set(100, 4000, Owner{Role: RoleData, Ino: 9})
	m.check(t, 2)
	if m.maxChunks < 10 {
		t.Fatalf("only %d chunks", m.maxChunks)
	}
}

// TestIndexBuildFrom: the bulk build from a run list (in place, in ascending stretches merged
// where they interleave) gives every block the owner that Set applied run by run in the same
// order gives it, whatever the order and overlaps of the runs; and the built index then takes
// Set and Clear as one built by Set does (its chunks share the run list's memory).
func TestIndexBuildFrom(t *testing.T) {
	const blocks = 30000
	rng := rand.New(rand.NewSource(7))
	roles := []Role{RoleData, RoleDir, RoleInd, RoleInodeTable, RoleSuper}
	// disjoint is a run list covering parts of the blocks without overlaps, in ascending order,
	// with neighbours that continue each other (the build merges those).
	disjoint := func() []ixRun {
		var rs []ixRun
		for b := uint64(rng.Intn(5)); b < blocks; {
			n := uint64(1 + rng.Intn(12))
			n = min(n, blocks-b)
			o := Owner{Role: roles[rng.Intn(len(roles))], Ino: uint32(1 + rng.Intn(4)), Logical: uint64(rng.Intn(50))}
			if k := len(rs); k > 0 && rng.Intn(3) == 0 && rs[k-1].end() == b {
				o = NewIndex(blocks, 8).advance(rs[k-1].o, rs[k-1].n) // continues the previous run
			}
			rs = append(rs, ixRun{b, n, o})
			b += n + uint64(rng.Intn(3))
		}
		return rs
	}
	// stretches cuts rs into k pieces and puts them in a random order.
	stretches := func(rs []ixRun, k int) []ixRun {
		cuts := []int{0, len(rs)}
		for i := 1; i < k; i++ {
			cuts = append(cuts, rng.Intn(len(rs)))
		}
		sort.Ints(cuts)
		var out []ixRun
		for _, p := range rng.Perm(len(cuts) - 1) {
			out = append(out, rs[cuts[p]:cuts[p+1]]...)
		}
		return out
	}
	cases := map[string]func() []ixRun{
		"empty":     func() []ixRun { return nil },
		"ascending": disjoint,
		"two":       func() []ixRun { return stretches(disjoint(), 2) },
		"five":      func() []ixRun { return stretches(disjoint(), 5) },
		"hundreds":  func() []ixRun { return stretches(disjoint(), 300) },
		"shuffled": func() []ixRun {
			rs := disjoint()
			rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			return rs
		},
		"descending": func() []ixRun {
			rs := disjoint()
			slices.Reverse(rs)
			return rs
		},
		"overlapping": func() []ixRun {
			rs := stretches(disjoint(), 4)
			for i := 0; i < 20; i++ { // cross-linked blocks: later runs must win
				r := rs[rng.Intn(len(rs))]
				r.o.Ino += 100
				rs = slices.Insert(rs, rng.Intn(len(rs)+1), ixRun{r.start + uint64(rng.Intn(int(r.n))), 1 + uint64(rng.Intn(30)), r.o})
			}
			return rs
		},
		"same start": func() []ixRun {
			rs := disjoint()
			r := rs[len(rs)/2]
			r.o.Ino += 100
			return append(rs, r)
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			trials := 5
			if name == "empty" {
				trials = 1 // check's LookupRun pass is slow over long free stretches
			}
			for trial := 0; trial < trials; trial++ {
				rs := mk()
				for i := range rs {
					rs[i].n = min(rs[i].n, blocks-rs[i].start)
				}
				want := &ixModel{x: NewIndex(blocks, 8), owners: make([]Owner, blocks)}
				for _, r := range rs {
					want.set(r.start, r.n, r.o)
				}
				m := &ixModel{x: NewIndex(blocks, 8), owners: want.owners}
				m.x.buildFrom(slices.Clone(rs))
				m.check(t, trial)
				if name != "overlapping" && name != "same start" && len(m.x.chunks) > 0 && len(m.x.chunks[0]) != ixMaxChunk/2 && m.x.Len() > ixMaxChunk/2 {
					t.Fatalf("first chunk of %d runs, want %d", len(m.x.chunks[0]), ixMaxChunk/2)
				}
				// Writes after the build: every chunk grows and shrinks without touching its
				// neighbours' runs in the shared memory.
				for step := 0; step < 400; step++ {
					start := uint64(rng.Intn(blocks))
					n := min(uint64(1+rng.Intn(20)), blocks-start)
					if rng.Intn(4) == 0 {
						m.clear(start, n)
					} else {
						m.set(start, n, Owner{Role: RoleData, Ino: uint32(200 + rng.Intn(3)), Logical: uint64(step)})
					}
				}
				m.check(t, trial)
			}
		})
	}
}

// TestIndexAgainstE2fsprogs builds the index and names of every standard image and checks all
// blocks against debugfs icheck (owning inode) and testb (allocated or free), and the paths of
// every inode against ncheck.
func TestIndexAgainstE2fsprogs(t *testing.T) {
	ext3fstest.Need(t)
	for _, im := range ext3fstest.Standard {
		t.Run(im.Name, func(t *testing.T) {
			t.Parallel()
			img, src := ext3fstest.Build(t, im)
			fsys := ext3fstest.Open(t, img)
			x, names, err := Build(fsys)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			// The source fs may not support user xattrs; then the image has no xattr block.
			_, xerr := syscall.Getxattr(filepath.Join(src, "small.txt"), "user.big", nil)
			checkIndex(t, fsys, img, x, true, xerr == nil)
			checkNames(t, fsys, img, names)
		})
	}
}

// checkIndex compares every block with icheck and testb; with coverage it also requires the
// roles the standard test tree must produce.
func checkIndex(t *testing.T, fsys *ext3fs.FS, img string, x *Index, coverage, xattr bool) {
	sb := fsys.SB
	first := uint64(sb.FirstDataBlock)
	var all []uint64
	for b := first; b < sb.BlocksCount; b++ {
		all = append(all, b)
	}
	icheck := ext3fstest.Icheck(t, img, all)
	// testb refuses block 0 (always in use when it is part of the file system).
	inUse := ext3fstest.InUse(t, img, max(first, 1), sb.BlocksCount-max(first, 1))
	inUse[0] = true
	roles := map[Role]int{}
	bad := 0
	for _, b := range all {
		o := x.Lookup(b)
		roles[o.Role]++
		want, ok := icheck[b]
		if !ok {
			t.Fatalf("icheck gave no answer for block %d", b)
		}
		if o.Ino != want && !(want == 0 && unlinked(t, fsys, o.Ino)) {
			t.Errorf("block %d: index says %v of inode %d, icheck says inode %d", b, o.Role, o.Ino, want)
			bad++
		}
		if used := inUse[b]; used != (o.Role != RoleFree) {
			t.Errorf("block %d: index says %v, block bitmap says in use = %v", b, o.Role, used)
			bad++
		}
		if o.Role == RoleInodeTable {
			fi, n, ok := fsys.InodeTableBlock(b)
			if !ok || uint64(fi) != o.Logical || n != fsys.BlockSize()/sb.InodeSize() {
				t.Errorf("block %d: inode table from inode %d, InodeTableBlock says %d (%v)", b, o.Logical, fi, ok)
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
	if !coverage {
		return
	}
	want := []Role{RoleSuper, RoleGDT, RoleBlockBitmap, RoleInodeBitmap, RoleInodeTable, RoleDir, RoleData,
		RoleSymlink, RoleInd, RoleDInd, RoleTInd, RoleFree}
	if sb.GroupCount() > 1 {
		want = append(want, RoleSuperBackup, RoleGDTBackup)
	}
	if sb.ReservedGDTBlocks > 0 {
		want = append(want, RoleReservedGDT)
	}
	if sb.HasJournal() {
		want = append(want, RoleJournal)
	}
	if sb.HasExtents() {
		want = []Role{RoleSuper, RoleGDT, RoleInodeTable, RoleDir, RoleData, RoleSymlink, RoleJournal, RoleFree}
	}
	if xattr && sb.FeatureCompat&ext3fs.CompatExtAttr != 0 {
		want = append(want, RoleXattr) // small.txt carries a 600-byte xattr
	}
	for _, r := range want {
		if roles[r] == 0 {
			t.Errorf("no block with role %v: the test image does not cover it", r)
		}
	}
	// Data blocks carry the logical block WalkBlocks reports.
	jin, _ := fsys.ReadInode(ext3fs.JournalIno)
	if sb.HasJournal() {
		fsys.WalkBlocks(jin, func(r ext3fs.BlockRef) error {
			if o := x.Lookup(r.Phys); r.Kind == ext3fs.BlockData && (o.Role != RoleJournal || o.Logical != r.Logical) {
				t.Errorf("journal block %d (logical %d): index says %+v", r.Phys, r.Logical, o)
			}
			return nil
		})
	}
	t.Logf("%d blocks in %d runs", sb.BlocksCount, x.Len())
}

// comparePaths checks Paths of every inode against ncheck, which must name at least minFound.
func comparePaths(t *testing.T, fsys *ext3fs.FS, img string, names *Names, minFound int) []uint32 {
	var inos []uint32
	for ino := uint32(2); ino <= fsys.SB.InodesCount; ino++ {
		inos = append(inos, ino)
	}
	ncheck := ext3fstest.Ncheck(t, img, inos)
	if len(ncheck) < minFound {
		t.Fatalf("ncheck found only %d inodes", len(ncheck))
	}
	for _, ino := range inos {
		got := names.Paths(ino)
		want := ncheck[ino]
		if ino == ext3fs.RootIno {
			want = []string{"/"}
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("inode %d: Paths %q, ncheck %q", ino, got, want)
		}
		if len(got) > 0 && names.Path(ino) == "" {
			t.Errorf("inode %d: Path empty but Paths = %q", ino, got)
		}
	}
	return inos
}

func checkNames(t *testing.T, fsys *ext3fs.FS, img string, names *Names) {
	inos := comparePaths(t, fsys, img, names, 500)
	// Removing a hard link promotes the next one; removing all forgets the inode.
	var multi uint32
	for _, ino := range inos {
		if len(names.Links(ino)) == 3 {
			multi = ino
		}
	}
	if multi == 0 {
		t.Fatal("no inode with 3 hard links")
	}
	ls := names.Links(multi)
	names.Remove(ls[0].Parent, ls[0].Name, multi)
	if p := names.Links(multi); len(p) != 2 || p[0] != ls[1] {
		t.Errorf("after removing the first link: %v", p)
	}
	names.Remove(ls[2].Parent, ls[2].Name, multi)
	names.Remove(ls[1].Parent, ls[1].Name, multi)
	if names.Path(multi) != "" || names.Links(multi) != nil {
		t.Errorf("all links removed, still %q", names.Path(multi))
	}
	names.Add(ext3fs.RootIno, "back", multi)
	names.Add(ext3fs.RootIno, "back", multi)
	if got := names.Paths(multi); len(got) != 1 || got[0] != "/back" {
		t.Errorf("re-added: %v", got)
	}
}

// unlinked reports an inode with no name left (an orphan: deleted while open when a power cut
// came). It still owns its blocks until the next mount frees them; debugfs icheck skips it.
func unlinked(t *testing.T, fsys *ext3fs.FS, ino uint32) bool {
	if ino == 0 {
		return false
	}
	in, err := fsys.ReadInode(ino)
	if err != nil {
		t.Fatalf("inode %d: %v", ino, err)
	}
	return in.LinksCount == 0
}
