package resolver

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ext3replay/ext3replay/internal/sparse"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// model is the resolver's picture of the disk: the starting image plus an
// overlay of the blocks written since that the resolver may need to decode
// again. It is an io.ReaderAt, so ext3fs.Open over it decodes the file
// system as it evolves.
//
// Memory stays bounded because the overlay only keeps blocks that are, or
// could turn out to be, metadata:
//   - blocks the index calls metadata (inode table, directory, indirect,
//     superblock, group descriptors, slow symlinks) are kept: they are
//     a small fraction of any disk;
//   - blocks owned as file data or journal are never kept (a write drops any
//     copy), their content is never decoded;
//   - a write to a block nobody owns yet is kept only if its content could be
//     a directory block (entries chain to the end), an indirect block (every
//     pointer inside the disk) or an extent node (magic), since only then
//     could a later claim need it. An all-zero block is one bit in a bitmap of the disk's blocks
//     (a guest zeroing its free space must not cost a map entry per block).
//     Random file data fails these tests at the first few bytes. The bytes
//     kept this way are capped (unownedCap); past the cap a write is dropped
//     and counted, and a claim of such a block reads as empty.
type model struct {
	base     io.ReaderAt
	size     int64 // bytes of the device
	bs       int
	blocks   uint64 // file-system blocks (for the plausibility test)
	filetype bool   // directory entries carry a file type (for the plausibility test)
	over     map[uint64][]byte
	kept     blockSet // the blocks over holds, below blocks (a block past them: see over)
	zeroed   blockSet // blocks written as all zeros while nobody owned them
	zero     []byte   // shared all-zero block, never modified

	// ra is a window of the base image read ahead, from block raStart. The kept blocks a batch
	// diffs are read from the base the first time, one block at a time and in block order mostly
	// (a transaction's inode-table blocks, a directory's blocks): 4,500 reads of 4 KiB on the
	// 6 GiB capture of docs/performance.md, a tenth of the replay's CPU. From the second block in
	// a row, raBlocks are read at once. The base never changes, so the window cannot go stale;
	// block serves it only where the overlay holds nothing.
	ra      []byte
	raStart uint64
	raNext  uint64 // the block after the last one block read from the base
	baseBuf []byte // block's block read from the base

	held         map[uint64]struct{} // overlay blocks kept while nobody owned them
	unownedBytes int64               // bytes held for those (len(held) * bs, zero blocks excluded)
	unownedCap   int64
	dropped      int64 // unowned plausible-metadata writes not kept (cap reached)
}

func newModel(base io.ReaderAt, size int64, bs int, blocks uint64, filetype bool, unownedCap int64) *model {
	return &model{base: base, size: size, bs: bs, blocks: blocks, filetype: filetype, over: make(map[uint64][]byte),
		held: make(map[uint64]struct{}), zero: make([]byte, bs), unownedCap: unownedCap,
		kept: newBlockSet(blocks), zeroed: newBlockSet(blocks)}
}

// ReadAt reads the modelled device: overlay blocks where kept, the base image elsewhere.
func (m *model) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("resolver: model read at negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= m.size {
			return n, io.EOF
		}
		b := uint64(pos / int64(m.bs))
		in := int(pos % int64(m.bs))
		want := min(len(p)-n, m.bs-in)
		if pos+int64(want) > m.size {
			want = int(m.size - pos)
		}
		if c, ok := m.over[b]; ok {
			copy(p[n:n+want], c[in:in+want])
		} else if m.isZeroed(b) {
			clear(p[n : n+want])
		} else {
			// This block and the next ones the overlay does not hold, in one read of the base
			// (a read of a whole inode table was one read per block).
			for n+want < len(p) && pos+int64(want) < m.size {
				nb := b + uint64(want+in)/uint64(m.bs)
				if _, ok := m.over[nb]; ok || m.isZeroed(nb) {
					break
				}
				want += min(len(p)-n-want, m.bs, int(m.size-pos-int64(want)))
			}
			if _, err := m.base.ReadAt(p[n:n+want], pos); err != nil && err != io.EOF {
				return n, err
			}
		}
		n += want
	}
	return n, nil
}

// block returns the current content of block b, which the caller must not modify nor keep: the
// overlay's buffer, the shared zero block, or the base image's block read into a buffer that the
// next read of the base through block reuses (blockCopy is the copy to keep). A copy of every base
// block a transaction diffed was most of what a large one allocated: on the large bench case one
// batch took 1,749 of them, 7 MB of fresh memory at 12-18 us a 4 KiB page on this VM.
func (m *model) block(b uint64) []byte {
	if c, ok := m.over[b]; ok {
		return c
	}
	if m.isZeroed(b) {
		return m.zero
	}
	if m.baseBuf == nil {
		m.baseBuf = make([]byte, m.bs)
	}
	m.readBase(b, m.baseBuf)
	return m.baseBuf
}

// raBlocks is the size of the read-ahead window (model.ra), in blocks.
const raBlocks = 32

// readBase reads block b of the base image into buf, through the read-ahead window.
func (m *model) readBase(b uint64, buf []byte) {
	bs := uint64(m.bs)
	switch {
	case b >= m.raStart && b < m.raStart+uint64(len(m.ra))/bs:
		copy(buf, m.ra[(b-m.raStart)*bs:])
	case b == m.raNext && m.fillWindow(b):
		copy(buf, m.ra)
	default:
		// The base itself, not the model: oldOf reads a block the overlay holds by now.
		k, err := m.base.ReadAt(buf, int64(b*bs))
		if err != nil && err != io.EOF {
			k = 0 // unreadable base reads as zeros; the image was opened and sized before
		}
		clear(buf[k:])
	}
	m.raNext = b + 1
}

// fillWindow reads the window from block b on; false (and no window) if it cannot.
func (m *model) fillWindow(b uint64) bool {
	bs := uint64(m.bs)
	n := min(raBlocks, uint64(m.size)/bs-min(b, uint64(m.size)/bs))
	if n < 2 {
		return false
	}
	if m.ra == nil {
		m.ra = make([]byte, raBlocks*bs)
	}
	m.ra = m.ra[:n*bs]
	if k, err := m.base.ReadAt(m.ra, int64(b*bs)); k < len(m.ra) || err != nil && err != io.EOF {
		m.ra = m.ra[:0]
		return false
	}
	m.raStart = b
	return true
}

// blockCopy is block's content as a copy the caller may keep and modify.
func (m *model) blockCopy(b uint64) []byte {
	if c, ok := m.over[b]; ok {
		return bytes.Clone(c)
	}
	c := make([]byte, m.bs)
	if !m.isZeroed(b) {
		m.readBase(b, c)
	}
	return c
}

// written reports whether the overlay holds content for b.
func (m *model) written(b uint64) bool { _, ok := m.over[b]; return ok || m.isZeroed(b) }

func (m *model) isZeroed(b uint64) bool { return m.zeroed.has(b) }

func (m *model) setZeroed(b uint64, on bool) { m.zeroed.set(b, on) }

// blockSet is a set of the blocks below a bound fixed when it is made; a block past the bound is
// never in it.
type blockSet struct {
	bits []uint64
	n    uint64
}

func newBlockSet(n uint64) blockSet { return blockSet{bits: make([]uint64, (n+63)/64), n: n} }

func (s *blockSet) has(b uint64) bool { return b < s.n && s.bits[b/64]&(1<<(b%64)) != 0 }

func (s *blockSet) set(b uint64, on bool) {
	switch {
	case b >= s.n:
	case on:
		s.bits[b/64] |= 1 << (b % 64)
	default:
		s.bits[b/64] &^= 1 << (b % 64)
	}
}

// put stores data as the content of block b (data is copied); b is owned metadata.
func (m *model) put(b uint64, data []byte) {
	m.owned(b)
	m.store(b, data)
}

// adopt is put without the copy: data, a whole block, becomes the model's, and the caller must
// not modify it. It replaces the block's buffer rather than copying into it: the buffer given
// before (the previous content, a block logged twice in one batch) is left as it was, the
// caller's for the batch's diffs.
func (m *model) adopt(b uint64, data []byte) {
	m.owned(b)
	m.setZeroed(b, false)
	m.setOver(b, data)
}

// owned moves b out of the unowned accounting: its content is now metadata of a file.
func (m *model) owned(b uint64) {
	if _, ok := m.held[b]; ok {
		delete(m.held, b)
		m.unownedBytes -= int64(m.bs)
	}
}

func (m *model) store(b uint64, data []byte) {
	m.setZeroed(b, false)
	if old, ok := m.over[b]; ok && len(old) == m.bs {
		copy(old, data)
		return
	}
	c := make([]byte, m.bs)
	copy(c, data)
	m.setOver(b, c)
}

// setOver makes data the overlay's content of block b.
func (m *model) setOver(b uint64, data []byte) {
	m.kept.set(b, true)
	m.over[b] = data
}

// putUnowned stores the content of a write to a block nobody owns, if it could be metadata.
func (m *model) putUnowned(b uint64, data []byte) {
	if sparse.IsZero(data) {
		m.drop(b)
		m.setZeroed(b, true)
		return
	}
	if !m.couldBeMetadata(data) {
		m.drop(b)
		return
	}
	if _, ok := m.held[b]; !ok {
		if m.unownedBytes+int64(m.bs) > m.unownedCap {
			m.drop(b)
			m.dropped++
			return
		}
		m.held[b] = struct{}{}
		m.unownedBytes += int64(m.bs)
	}
	m.store(b, data)
}

// drop forgets block b's content: it now holds file data or is free again.
func (m *model) drop(b uint64) {
	m.zeroed.set(b, false)
	if b < m.blocks && !m.kept.has(b) {
		// Nothing kept (held blocks are kept in over too): the common case, every block of a
		// file's data, with no map probed (two misses a block were 7% of the replay of the
		// bench's large case).
		return
	}
	m.kept.set(b, false)
	m.owned(b)
	delete(m.over, b)
}

// couldBeMetadata is the cheap test of putUnowned: an extent node, an indirect block whose
// pointers all lie inside the disk, or a directory block whose entries chain.
func (m *model) couldBeMetadata(b []byte) bool {
	return couldBeMetadata(b, m.blocks, m.filetype)
}

// couldBeMetadata is model.couldBeMetadata on a file system of the given size and filetype
// feature (which a model never changes).
func couldBeMetadata(b []byte, blocks uint64, filetype bool) bool {
	return ext3fs.IsExtentNode(b) || ext3fs.IndirectInRange(b, blocks) || ext3fs.IsDirBlock(b, filetype)
}
