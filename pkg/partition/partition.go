// Package partition decodes the partition table of a disk image: MBR (with the extended
// partition's chain of logical partitions) and GPT (protective MBR, header and entry array,
// both CRC32-checked, the backup copy used when the primary is damaged). It reads over an
// io.ReaderAt and keeps no state; errors are *FormatError values naming the structure and the
// byte offset at fault.
//
// A disk that starts with a bare file system has no table: Read returns a Table whose Scheme is
// None. Partitions are numbered as Linux numbers them (/dev/vdaN): GPT entries by their slot in
// the array, MBR primaries 1-4, logical partitions from 5.
//
// Every on-disk field is little-endian. Sizes and offsets are in bytes unless a name says LBA;
// the logical sector size is 512 (GPT headers at byte 4096 for 4 KiB-sector disks are found too).
package partition

import (
	"fmt"
	"io"
)

// Scheme is the kind of partition table.
type Scheme string

// The schemes Read tells apart.
const (
	None Scheme = ""    // no table: a bare file system, or an empty disk
	MBR  Scheme = "mbr" // DOS/MBR, extended and logical partitions included
	GPT  Scheme = "gpt"
)

// Partition is one partition of a table. Extended MBR containers are not listed (their logical
// partitions are); the EBRs inside them are in Table.Areas.
type Partition struct {
	Number int    // as Linux numbers it: /dev/vdaN
	Start  int64  // byte offset on the disk
	Size   int64  // bytes
	Type   string // GPT: the type GUID (upper case); MBR: the type byte as two hex digits ("83")
	Kind   Kind   // what Type says the partition holds, as far as this package knows
	// Name and UUID come from a GPT entry (empty for MBR). Bootable is the MBR active flag; for
	// GPT, the legacy BIOS bootable attribute (bit 2).
	Name     string
	UUID     string
	Bootable bool
	// Attrs are a GPT entry's attribute bits.
	Attrs uint64
}

// End is the first byte after the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// Contains reports whether byte offset off lies in the partition.
func (p Partition) Contains(off int64) bool { return off >= p.Start && off < p.End() }

// Kind is what a partition's type says it holds.
type Kind string

// Kinds of partition types. Linux says "a Linux file system" without saying which; callers
// look at the content to find ext2/3/4.
const (
	KindLinux    Kind = "linux"
	KindSwap     Kind = "swap"
	KindEFI      Kind = "efi"
	KindBIOSBoot Kind = "bios-boot"
	KindLVM      Kind = "lvm"
	KindRAID     Kind = "raid"
	KindOther    Kind = "other"
	// KindExtended is the MBR container of logical partitions (Table.Extended).
	KindExtended Kind = "extended"
)

// Area is a byte range that holds the table itself: the MBR sector, an EBR, a GPT header or
// entry array (primary or backup).
type Area struct {
	Start int64
	Size  int64
	What  string // "mbr", "ebr", "gpt header", "gpt entries", "gpt backup header", "gpt backup entries"
}

// Table is a decoded partition table.
type Table struct {
	Scheme     Scheme
	SectorSize int64
	// DiskID is the GPT disk GUID or the MBR disk signature (as 0x%08x).
	DiskID     string
	Partitions []Partition
	// Extended is the MBR extended partition that holds the logical ones (nil if none). It is
	// not in Partitions: its sectors belong to the logical partitions and the EBRs.
	Extended *Partition
	Areas    []Area
	// FirstUsableLBA and LastUsableLBA are the GPT header's bounds (0 for MBR).
	FirstUsableLBA, LastUsableLBA uint64
	// BackupUsed is true when the primary GPT header or entries were damaged and the backup
	// copy was decoded instead; PrimaryErr says what was wrong with the primary.
	BackupUsed bool
	PrimaryErr error
	// BackupErr says what is wrong with the backup GPT header or entries (nil if they decode).
	BackupErr error
}

// Partition returns the partition numbered n, if the table has it.
func (t *Table) Partition(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// Locate says what holds byte offset off: a partition (ok true), a table area (area non-nil),
// or neither (unpartitioned space).
func (t *Table) Locate(off int64) (p Partition, ok bool, area *Area) {
	for _, q := range t.Partitions {
		if q.Contains(off) {
			return q, true, nil
		}
	}
	for i := range t.Areas {
		a := &t.Areas[i]
		if off >= a.Start && off < a.Start+a.Size {
			return Partition{}, false, a
		}
	}
	return Partition{}, false, nil
}

// FormatError reports a malformed table. Offset is a byte offset from the start of the disk.
type FormatError struct {
	Struct string // "mbr", "ebr", "gpt header", "gpt entry 3", ...
	Offset int64
	Msg    string
	Err    error // an underlying I/O error, if any
}

func (e *FormatError) Error() string {
	msg := e.Msg
	if e.Err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += e.Err.Error()
	}
	return fmt.Sprintf("partition: %s at byte %d: %s", e.Struct, e.Offset, msg)
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(st string, off int64, format string, args ...any) error {
	return &FormatError{Struct: st, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// SectorSize is the logical sector size MBR offsets count in.
const SectorSize = 512

// Read decodes the partition table of a disk of size bytes. A disk without the MBR boot
// signature, or whose first sectors hold an ext2/3/4 superblock (a bare file system; mke2fs
// clears the sectors before it), has no table: Scheme None, no error. A signature with a
// malformed table behind it is an error.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	if size < SectorSize {
		return &Table{Scheme: None}, nil
	}
	sec0 := make([]byte, SectorSize)
	if err := readFull(r, sec0, 0, "mbr"); err != nil {
		return nil, err
	}
	if sec0[510] != 0x55 || sec0[511] != 0xAA {
		return &Table{Scheme: None}, nil
	}
	if bareExt(r, size) {
		// A file system made over an old table keeps the stale boot signature only if mke2fs
		// did not zap it; the superblock is the better evidence.
		return &Table{Scheme: None}, nil
	}
	m, err := ParseMBR(sec0)
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		if e.Type == 0xEE {
			return readGPT(r, size)
		}
	}
	return readMBR(r, size, m)
}

// bareExt reports whether the disk starts with an ext2/3/4 superblock (magic at byte 1080 and
// a block size that makes sense).
func bareExt(r io.ReaderAt, size int64) bool {
	if size < 2048 {
		return false
	}
	var b [2]byte
	if _, err := r.ReadAt(b[:], 1024+56); err != nil {
		return false
	}
	if b[0] != 0x53 || b[1] != 0xEF {
		return false
	}
	var lb [4]byte
	if _, err := r.ReadAt(lb[:], 1024+24); err != nil {
		return false
	}
	logBlock := uint32(lb[0]) | uint32(lb[1])<<8 | uint32(lb[2])<<16 | uint32(lb[3])<<24
	return logBlock <= 6
}

func readFull(r io.ReaderAt, b []byte, off int64, st string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &FormatError{Struct: st, Offset: off, Msg: fmt.Sprintf("reading %d bytes", len(b)), Err: err}
}
