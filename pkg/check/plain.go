package check

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// Plain file data. The checker models the disk as recovery would see it, and kept every block
// written home in memory: a guest copying 1 GiB made a checker of 2.3 GB, and a longer copy
// would not fit at all. Its checks read metadata only (superblocks, descriptors, bitmaps, inode
// tables, directories, map nodes, xattr blocks); a file's data is never read, unless a block
// that held data becomes metadata without being written again, which is itself a fault the
// check must see as the guest left it.
//
// So, when the log can be read again (Options.Refetch), a block of a large write whose content
// is plain data is not kept: the checker keeps the record that wrote it and a hash of its
// content, and reads it again from the log in the rare case it is read (then keeping it).
// Plain is the test analyze's payload filter makes (resolver.PlainData: not zeros, nothing a
// map node or directory block could be), and besides not an xattr block, and not a block that
// holds metadata in the starting image (its block index, as analyze builds it); the journal's
// blocks are never plain. The test only decides what is kept in memory: a block misjudged plain is read
// again, whole, the same bytes. Whether a write changed a plain block is decided on the hashes.

// plainMin is the smallest write whose blocks may be left plain: small writes are mostly
// metadata, and a kept block costs no more than its hash there.
const plainMin = blklog.DefaultOmitMin

// plainRef stands for the content of a block left out: the record that wrote it, and its hash.
type plainRef struct {
	rec int64
	sum uint64
}

// plainSetup prepares the plain-data rule for fs (the starting image): the blocks that hold
// metadata there, which are never plain.
func (c *Checker) plainSetup(fs *ext3fs.FS) error {
	x, _, _, err := resolver.BuildTolerant(fs)
	if err != nil {
		return fmt.Errorf("check: indexing the image's blocks: %w", err)
	}
	c.keep = make([]uint64, (c.nblk+63)/64)
	x.Runs(func(start, n uint64, o resolver.Owner) bool {
		if o.Role == resolver.RoleFree || o.Role == resolver.RoleData {
			return true
		}
		for b := start; b < start+n && b < c.nblk; b++ {
			c.keep[b/64] |= 1 << (b % 64)
		}
		return true
	})
	c.plain = map[uint64]plainRef{}
	c.filetype = fs.SB.HasFiletype()
	c.seed = maphash.MakeSeed()
	return nil
}

// isPlain reports whether block b's new content d may be left plain.
func (c *Checker) isPlain(b uint64, d []byte) bool {
	if c.keep == nil || b >= c.nblk || c.keep[b/64]&(1<<(b%64)) != 0 {
		return false
	}
	if _, ok := c.jblk[b]; ok || c.mountReplay[b] {
		return false
	}
	return binary.LittleEndian.Uint32(d) != ext3fs.XattrMagic && resolver.PlainData(d, c.nblk, c.filetype)
}

// putPlain is put for content d of block b left plain, of a write ending at byte end of the
// disk; it reports whether the content changed.
func (c *Checker) putPlain(b uint64, d []byte, rec int64, end int64) bool {
	sum := maphash.Bytes(c.seed, d)
	if ref, ok := c.plain[b]; ok {
		if ref.sum == sum {
			return false
		}
	} else if old, ok := c.over[b]; ok {
		if bytes.Equal(old, d) {
			return false // a rewrite of the same content introduces nothing
		}
	} else if bytes.Equal(c.imageBlock(b, end), d) {
		return false
	}
	c.last[b] = rec
	delete(c.over, b)
	c.plain[b] = plainRef{rec: rec, sum: sum}
	c.nPlain++
	c.changed.add(b)
	return true
}

// imageBlock is block b of the image (as block reads it, for a block neither in over nor in
// plain), for a write that ends at byte end of the disk: the image under the whole write is read
// at once, on the first block that needs it. One read of a 4 KiB block per block of a large copy
// was a quarter of check's time on the bench's large case (262,000 reads for 1 GiB).
func (c *Checker) imageBlock(b uint64, end int64) []byte {
	if b < c.origFirst || b >= c.origFirst+uint64(c.origN) {
		n := int((end+int64(c.bs)-1)/int64(c.bs) - int64(b))
		if cap(c.orig) < n*c.bs {
			c.orig = make([]byte, n*c.bs)
		}
		c.orig = c.orig[:n*c.bs]
		if z, ok := c.img.(interface{ Zeros(off, n int64) bool }); ok && z.Zeros(int64(b)*int64(c.bs), int64(len(c.orig))) {
			// A hole of the image (free space never written, the usual place of a large copy):
			// zeros, known without reading them.
			if c.zero == nil {
				c.zero = make([]byte, c.bs)
			}
			c.origFirst, c.origN, c.origZero = b, n, true
			return c.zero
		}
		c.origZero = false
		k, err := c.img.ReadAt(c.orig, int64(b)*int64(c.bs))
		if err != nil && (err != io.EOF || k < c.bs) {
			c.origN = 0
			return c.block(b) // which reports the error as it always did
		}
		c.origFirst, c.origN = b, k/c.bs
	}
	if c.origZero {
		return c.zero
	}
	i := int(b-c.origFirst) * c.bs
	return c.orig[i : i+c.bs]
}

// plainContent reads block b, left plain, again from the log, and keeps it from then on: a
// block read once is likely read again (it has become metadata). What cannot be read again is
// an error of the run (Errors), and reads as zeros.
func (c *Checker) plainContent(b uint64, ref plainRef) []byte {
	d, err := c.fetchBlock(b, ref)
	if err != nil {
		c.errs = append(c.errs, fmt.Sprintf("reading block %d again from record %d of the log: %v", b, ref.rec, err))
		d = make([]byte, c.bs)
	}
	delete(c.plain, b)
	c.over[b] = d
	c.refetched++
	return d
}

func (c *Checker) fetchBlock(b uint64, ref plainRef) ([]byte, error) {
	if c.fetched.Data == nil || c.fetched.Index != ref.rec {
		rec, err := c.refetch(ref.rec)
		if err != nil {
			return nil, err
		}
		c.fetched = rec
	}
	rec := c.fetched
	off := int64(b)*int64(c.bs) - int64(rec.Sector)*blklog.SectorSize
	if rec.Type != blklog.TypeWrite || off < 0 || off+int64(c.bs) > int64(len(rec.Data)) {
		return nil, fmt.Errorf("it is now a %v of %d bytes at sector %d, not a write of block %d", rec.Type, len(rec.Data), rec.Sector, b)
	}
	d := bytes.Clone(rec.Data[off : off+int64(c.bs)])
	if maphash.Bytes(c.seed, d) != ref.sum {
		return nil, fmt.Errorf("its content changed since it was read")
	}
	return d, nil
}

// Refetched is how many blocks left plain a check had to read again from the log.
func (c *Checker) Refetched() int { return c.refetched }
