package ext3fstest

import (
	"encoding/binary"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// FCBuilder encodes ext4 fast-commit records as ext4_fc_perform_commit lays them out:
// tag-length-value records in one block, ended by a TAIL whose value runs to the end of the block
// and whose crc32c covers every record of the fast commit up to its own tid.
type FCBuilder struct {
	buf []byte
	crc uint32
}

// Record appends one record.
func (b *FCBuilder) Record(tag ext3fs.FCTag, val []byte) {
	r := binary.LittleEndian.AppendUint16(nil, uint16(tag))
	r = binary.LittleEndian.AppendUint16(r, uint16(len(val)))
	r = append(r, val...)
	b.crc = ext3fs.Crc32c(b.crc, r)
	b.buf = append(b.buf, r...)
}

// Head appends the HEAD record of a round of tid.
func (b *FCBuilder) Head(tid uint32) {
	b.Record(ext3fs.FCTagHead, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0), tid))
}

// Inode appends an INODE record: the raw on-disk inode (128 bytes and its extra fields).
func (b *FCBuilder) Inode(ino uint32, raw []byte) {
	b.Record(ext3fs.FCTagInode, append(binary.LittleEndian.AppendUint32(nil, ino), raw...))
}

// Dentry appends a CREAT_DENTRY, ADD_ENTRY or DEL_ENTRY record.
func (b *FCBuilder) Dentry(tag ext3fs.FCTag, parent, ino uint32, name string) {
	v := binary.LittleEndian.AppendUint32(nil, parent)
	v = binary.LittleEndian.AppendUint32(v, ino)
	b.Record(tag, append(v, name...))
}

// Block ends the fast commit with its TAIL and returns the bs-byte block; corrupt spoils the
// stored crc, as a torn write would.
func (b *FCBuilder) Block(tid uint32, bs int, corrupt bool) []byte {
	off := len(b.buf)
	hdr := binary.LittleEndian.AppendUint16(nil, uint16(ext3fs.FCTagTail))
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(bs-off-ext3fs.FCTagHeaderSize))
	hdr = binary.LittleEndian.AppendUint32(hdr, tid)
	crc := ext3fs.Crc32c(b.crc, hdr)
	if corrupt {
		crc ^= 1
	}
	out := make([]byte, bs)
	copy(out, b.buf)
	copy(out[off:], hdr)
	binary.LittleEndian.PutUint32(out[off+len(hdr):], crc)
	return out
}

// FCInodeRecord is inode ino's record in img as ext4_fc_write_inode copies it: the first 128
// bytes and i_extra_isize more.
func FCInodeRecord(fs *ext3fs.FS, img []byte, ino uint32) []byte {
	blk, off := fs.InodeLocation(ino)
	raw := img[int(blk)*fs.BlockSize()+off:][:fs.SB.InodeSize()]
	if len(raw) > ext3fs.InodeRecordSize {
		raw = raw[:ext3fs.InodeRecordSize+int(binary.LittleEndian.Uint16(raw[ext3fs.InodeRecordSize:]))]
	}
	return append([]byte(nil), raw...)
}

// FastCommitArea returns the file-system block of each journal block of the fast-commit area, and
// the journal superblock's block, of the image fs reads.
func FastCommitArea(fs *ext3fs.FS, img []byte) (area []uint64, jsbBlock uint64, jsb *ext3fs.JournalSuperblock, err error) {
	jin, err := fs.ReadInode(fs.SB.JournalInum)
	if err != nil {
		return nil, 0, nil, err
	}
	phys := map[uint64]uint64{}
	if err := fs.WalkBlocks(jin, func(br ext3fs.BlockRef) error {
		if br.Kind == ext3fs.BlockData {
			phys[br.Logical] = br.Phys
		}
		return nil
	}); err != nil {
		return nil, 0, nil, err
	}
	bs := fs.BlockSize()
	jsb, err = ext3fs.ParseJournalSuperblock(img[int(phys[0])*bs:][:bs])
	if err != nil {
		return nil, 0, nil, err
	}
	first, end, ok := jsb.FastCommitArea()
	if !ok {
		return nil, phys[0], jsb, nil
	}
	for n := first; n < end; n++ {
		area = append(area, phys[uint64(n)])
	}
	return area, phys[0], jsb, nil
}
