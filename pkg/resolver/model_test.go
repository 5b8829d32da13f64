package resolver

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/ext3replay/ext3replay/internal/sparse"
)

func TestModelKeepsOnlyPossibleMetadata(t *testing.T) {
	const bs = 1024
	base := bytes.Repeat([]byte{0xAA}, 64*bs)
	m := newModel(bytes.NewReader(base), int64(len(base)), bs, 64, true, 3*bs)

	random := make([]byte, bs)
	rand.New(rand.NewSource(1)).Read(random)
	text := bytes.Repeat([]byte("some text file content\n"), bs/23+1)[:bs]
	ind := make([]byte, bs)
	for i := 0; i < 10; i++ {
		binary.LittleEndian.PutUint32(ind[4*i:], uint32(20+i)) // pointers inside the 64-block disk
	}
	dir := make([]byte, bs)
	binary.LittleEndian.PutUint32(dir[0:], 12)
	binary.LittleEndian.PutUint16(dir[4:], bs) // one entry spanning the block
	dir[6] = 1
	dir[8] = 'x'

	m.putUnowned(1, random)
	m.putUnowned(2, text)
	m.putUnowned(3, ind)
	m.putUnowned(4, dir)
	m.putUnowned(5, make([]byte, bs))
	for b, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: true, 5: true} {
		if m.written(b) != want {
			t.Errorf("block %d kept = %v, want %v", b, m.written(b), want)
		}
	}
	if !bytes.Equal(m.block(3), ind) || !bytes.Equal(m.block(4), dir) || !sparse.IsZero(m.block(5)) {
		t.Error("kept content differs from what was written")
	}
	// Block 1 was not kept: the model shows the base image there.
	if !bytes.Equal(m.block(1), base[bs:2*bs]) {
		t.Error("dropped block does not read as the base image")
	}
	// The cap (3 blocks; zero blocks are free) is reached: a third plausible block is dropped.
	m.putUnowned(6, dir)
	m.putUnowned(7, ind)
	if m.written(7) || m.dropped != 1 {
		t.Errorf("over the cap: kept=%v dropped=%d, want not kept and 1 dropped", m.written(7), m.dropped)
	}
	// A claimed block leaves the unowned account, making room again.
	m.owned(3)
	m.putUnowned(7, ind)
	if !m.written(7) {
		t.Error("block not kept after room was made")
	}
	// ReadAt across blocks mixes overlay and base.
	buf := make([]byte, 2*bs)
	if _, err := m.ReadAt(buf, 3*bs+bs/2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:bs/2], ind[bs/2:]) || !bytes.Equal(buf[bs/2:bs/2+bs], dir) {
		t.Error("ReadAt across overlay blocks is wrong")
	}
}

// TestModelReadAtMixed: ReadAt over any range, at any offset, gives each block's content as
// block does (overlay, zeroed or base), whether it reads the base block by block or in runs,
// and the end of the device reads as io.EOF.
func TestModelReadAtMixed(t *testing.T) {
	const bs, nblk = 512, 40
	base := make([]byte, nblk*bs+100) // a device a little longer than the file system
	rng := rand.New(rand.NewSource(2))
	rng.Read(base)
	m := newModel(bytes.NewReader(base), int64(len(base)), bs, nblk, true, 1<<20)
	want := bytes.Clone(base)
	for b := uint64(0); b < nblk; b++ {
		switch rng.Intn(4) {
		case 0:
			c := make([]byte, bs)
			rng.Read(c)
			m.put(b, c)
			copy(want[b*bs:], c)
		case 1:
			m.putUnowned(b, make([]byte, bs))
			clear(want[b*bs : (b+1)*bs])
		}
	}
	for b := uint64(0); b < nblk; b++ {
		if !bytes.Equal(m.block(b), want[b*bs:(b+1)*bs]) {
			t.Fatalf("block %d differs", b)
		}
	}
	// Blocks written or dropped after the base around them was read ahead: the overlay wins.
	for b := uint64(0); b < nblk; b += 3 {
		c := make([]byte, bs)
		rng.Read(c)
		m.put(b, c)
		copy(want[b*bs:], c)
	}
	m.drop(4)
	copy(want[4*bs:5*bs], base[4*bs:])
	for b := uint64(0); b < nblk; b++ {
		if !bytes.Equal(m.block(b), want[b*bs:(b+1)*bs]) {
			t.Fatalf("block %d differs after the overlay changed", b)
		}
	}
	// block reads the base into one buffer it reuses; blockCopy's copies are the caller's.
	var fromBase []uint64
	for b := uint64(0); b < nblk; b++ {
		if !m.written(b) {
			fromBase = append(fromBase, b)
		}
	}
	if len(fromBase) < 2 {
		t.Fatal("fewer than two blocks left to the base")
	}
	b1, b2 := fromBase[0], fromBase[1]
	c1, c2 := m.blockCopy(b1), m.blockCopy(b2)
	if !bytes.Equal(c1, want[b1*bs:(b1+1)*bs]) || !bytes.Equal(c2, want[b2*bs:(b2+1)*bs]) {
		t.Fatal("blockCopy differs from the base")
	}
	if &m.block(b1)[0] == &c1[0] || &m.block(b1)[0] != &m.block(b2)[0] {
		t.Fatal("blockCopy shares block's buffer, or block allocates a buffer per base block")
	}
	for range 2000 {
		off := rng.Intn(len(base))
		n := rng.Intn(6*bs) + 1
		buf := make([]byte, n)
		got, err := m.ReadAt(buf, int64(off))
		end := min(off+n, len(base))
		if got != end-off || (end < off+n) != (err != nil) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", n, off, got, err, end-off)
		}
		if !bytes.Equal(buf[:got], want[off:end]) {
			t.Fatalf("ReadAt(%d bytes at %d) differs from the blocks", n, off)
		}
	}
}
