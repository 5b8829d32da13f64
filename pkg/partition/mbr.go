package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// MBREntry is one 16-byte slot of an MBR or EBR partition table (at byte 446 + 16*i).
type MBREntry struct {
	Status   uint8 // 0x80 active, 0x00 inactive
	Type     uint8
	FirstLBA uint32 // relative: to the disk (MBR), to the EBR or the extended partition (EBR)
	Sectors  uint32
}

// MBRSector is a decoded MBR or EBR sector.
type MBRSector struct {
	DiskSignature uint32 // bytes 440-443 (meaningful in the MBR only)
	Entries       [4]MBREntry
}

// ParseMBR decodes a 512-byte MBR or EBR sector. It checks the boot signature and the status
// bytes; where the entries point is checked by Read, which knows the disk's size.
func ParseMBR(b []byte) (*MBRSector, error) {
	if len(b) < SectorSize {
		return nil, formatErr("mbr", 0, "sector is %d bytes, want %d", len(b), SectorSize)
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return nil, formatErr("mbr", 510, "boot signature is %02x %02x, want 55 aa", b[510], b[511])
	}
	m := &MBRSector{DiskSignature: binary.LittleEndian.Uint32(b[440:])}
	for i := range m.Entries {
		e := b[446+16*i:][:16]
		m.Entries[i] = MBREntry{
			Status:   e[0],
			Type:     e[4],
			FirstLBA: binary.LittleEndian.Uint32(e[8:]),
			Sectors:  binary.LittleEndian.Uint32(e[12:]),
		}
		if e[0] != 0 && e[0] != 0x80 {
			return nil, formatErr("mbr", int64(446+16*i), "partition %d status is 0x%02x, want 0x00 or 0x80", i+1, e[0])
		}
	}
	return m, nil
}

func isExtended(t uint8) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// maxLogical bounds the EBR chain (a loop in a hostile image must end).
const maxLogical = 256

func readMBR(r io.ReaderAt, size int64, m *MBRSector) (*Table, error) {
	t := &Table{Scheme: MBR, SectorSize: SectorSize, DiskID: fmt.Sprintf("0x%08x", m.DiskSignature)}
	t.Areas = append(t.Areas, Area{Start: 0, Size: SectorSize, What: "mbr"})
	sectors := uint64(size) / SectorSize
	var ext *MBREntry
	for i, e := range m.Entries {
		if e.Type == 0 {
			continue
		}
		off := int64(446 + 16*i)
		if e.Sectors == 0 {
			return nil, formatErr("mbr", off, "partition %d (type 0x%02x) has no sectors", i+1, e.Type)
		}
		if e.FirstLBA == 0 {
			return nil, formatErr("mbr", off, "partition %d starts at sector 0, over the MBR", i+1)
		}
		if end := uint64(e.FirstLBA) + uint64(e.Sectors); end > sectors {
			return nil, formatErr("mbr", off, "partition %d ends at sector %d, past the disk's %d sectors", i+1, end, sectors)
		}
		if isExtended(e.Type) {
			if ext != nil {
				return nil, formatErr("mbr", off, "partition %d is a second extended partition", i+1)
			}
			ext = &m.Entries[i]
			xp := mbrPartition(i+1, e, 0)
			xp.Kind = KindExtended
			t.Extended = &xp
			continue
		}
		t.Partitions = append(t.Partitions, mbrPartition(i+1, e, 0))
	}
	if ext != nil {
		if err := readLogical(r, t, ext); err != nil {
			return nil, err
		}
	}
	if err := checkOverlap(t); err != nil {
		return nil, err
	}
	return t, nil
}

func mbrPartition(n int, e MBREntry, base uint64) Partition {
	start := (base + uint64(e.FirstLBA)) * SectorSize
	return Partition{
		Number:   n,
		Start:    int64(start),
		Size:     int64(e.Sectors) * SectorSize,
		Type:     fmt.Sprintf("%02x", e.Type),
		Kind:     mbrKind(e.Type),
		Bootable: e.Status == 0x80,
	}
}

// readLogical follows the EBR chain of the extended partition ext: each EBR's first entry is a
// logical partition (relative to that EBR), its second the next EBR (relative to the extended
// partition's start).
func readLogical(r io.ReaderAt, t *Table, ext *MBREntry) error {
	extStart, extEnd := uint64(ext.FirstLBA), uint64(ext.FirstLBA)+uint64(ext.Sectors)
	seen := map[uint64]bool{}
	ebr := extStart
	buf := make([]byte, SectorSize)
	for n := 5; ; n++ {
		off := int64(ebr * SectorSize)
		if n-5 >= maxLogical {
			return formatErr("ebr", off, "more than %d logical partitions (a loop?)", maxLogical)
		}
		if seen[ebr] {
			return formatErr("ebr", off, "the EBR chain comes back to sector %d", ebr)
		}
		seen[ebr] = true
		if err := readFull(r, buf, off, "ebr"); err != nil {
			return err
		}
		m, err := ParseMBR(buf)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Struct, fe.Offset = "ebr", off+fe.Offset
			}
			return err
		}
		t.Areas = append(t.Areas, Area{Start: off, Size: SectorSize, What: "ebr"})
		l, next := m.Entries[0], m.Entries[1]
		if l.Type != 0 {
			if l.Sectors == 0 || l.FirstLBA == 0 {
				return formatErr("ebr", off+446, "logical partition %d: start %d, %d sectors", n, l.FirstLBA, l.Sectors)
			}
			if end := ebr + uint64(l.FirstLBA) + uint64(l.Sectors); end > extEnd {
				return formatErr("ebr", off+446, "logical partition %d ends at sector %d, past the extended partition's end %d", n, end, extEnd)
			}
			t.Partitions = append(t.Partitions, mbrPartition(n, l, ebr))
		}
		if next.Type == 0 {
			return nil
		}
		if !isExtended(next.Type) {
			return formatErr("ebr", off+446+16, "link to the next EBR has type 0x%02x, want an extended type", next.Type)
		}
		ebr = extStart + uint64(next.FirstLBA)
		if next.FirstLBA == 0 || ebr >= extEnd {
			return formatErr("ebr", off+446+16, "next EBR at sector %d, outside the extended partition (%d-%d)", ebr, extStart, extEnd)
		}
	}
}

// checkOverlap refuses partitions that share sectors: a table like that has no single
// reading, and routing a request by it would be a guess.
func checkOverlap(t *Table) error {
	ps := append([]Partition(nil), t.Partitions...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
	for i := 1; i < len(ps); i++ {
		if ps[i].Start < ps[i-1].End() {
			return formatErr(string(t.Scheme), 0, "partitions %d and %d overlap (bytes %d-%d and %d-%d)",
				ps[i-1].Number, ps[i].Number, ps[i-1].Start, ps[i-1].End(), ps[i].Start, ps[i].End())
		}
	}
	return nil
}

// mbrKind names the MBR types a Linux guest uses.
func mbrKind(t uint8) Kind {
	switch t {
	case 0x83:
		return KindLinux
	case 0x82:
		return KindSwap
	case 0xEF:
		return KindEFI
	case 0x8E:
		return KindLVM
	case 0xFD:
		return KindRAID
	}
	return KindOther
}
