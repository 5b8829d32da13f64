package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GPTHeader is a decoded GPT header (UEFI 2.x, 5.3.2). LBAs count logical sectors.
type GPTHeader struct {
	Revision       uint32
	HeaderSize     uint32
	HeaderCRC32    uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       GUID
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
	EntriesCRC32   uint32
}

// GUID is a GPT GUID as stored: the first three fields little-endian ("mixed endian").
type GUID [16]byte

// String formats g as sfdisk and the UEFI spec print it, upper case.
func (g GUID) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
}

// IsZero reports an all-zero GUID (an unused entry's type).
func (g GUID) IsZero() bool { return g == GUID{} }

// GPTEntry is one entry of the partition entry array.
type GPTEntry struct {
	Type     GUID
	UUID     GUID
	FirstLBA uint64
	LastLBA  uint64 // inclusive
	Attrs    uint64
	Name     string // UTF-16LE on disk, up to 36 code units
}

const gptSignature = "EFI PART"

// maxEntryBytes bounds the entry array read from a header (the spec's minimum is 16 KiB; tools
// write 128 entries of 128 bytes). A hostile header must not make Read allocate gigabytes.
const maxEntryBytes = 4 << 20

// ParseGPTHeader decodes a GPT header from the sector b, checking its signature, size and CRC.
// at is b's byte offset on the disk, for errors.
func ParseGPTHeader(b []byte, at int64) (*GPTHeader, error) {
	const st = "gpt header"
	if len(b) < 92 {
		return nil, formatErr(st, at, "%d bytes, want at least 92", len(b))
	}
	if string(b[:8]) != gptSignature {
		return nil, formatErr(st, at, "signature is %q, want %q", b[:8], gptSignature)
	}
	le := binary.LittleEndian
	h := &GPTHeader{
		Revision:       le.Uint32(b[8:]),
		HeaderSize:     le.Uint32(b[12:]),
		HeaderCRC32:    le.Uint32(b[16:]),
		MyLBA:          le.Uint64(b[24:]),
		AlternateLBA:   le.Uint64(b[32:]),
		FirstUsableLBA: le.Uint64(b[40:]),
		LastUsableLBA:  le.Uint64(b[48:]),
		EntriesLBA:     le.Uint64(b[72:]),
		NumEntries:     le.Uint32(b[80:]),
		EntrySize:      le.Uint32(b[84:]),
		EntriesCRC32:   le.Uint32(b[88:]),
	}
	copy(h.DiskGUID[:], b[56:72])
	if h.HeaderSize < 92 || int(h.HeaderSize) > len(b) {
		return nil, formatErr(st, at+12, "header size %d, want 92 to %d", h.HeaderSize, len(b))
	}
	c := make([]byte, h.HeaderSize)
	copy(c, b)
	clear(c[16:20])
	if got := crc32.ChecksumIEEE(c); got != h.HeaderCRC32 {
		return nil, formatErr(st, at+16, "header CRC32 is 0x%08x, computed 0x%08x", h.HeaderCRC32, got)
	}
	if h.EntrySize < 128 || h.EntrySize%8 != 0 {
		return nil, formatErr(st, at+84, "entry size %d, want a multiple of 8, at least 128", h.EntrySize)
	}
	if uint64(h.NumEntries)*uint64(h.EntrySize) > maxEntryBytes {
		return nil, formatErr(st, at+80, "%d entries of %d bytes, more than %d bytes", h.NumEntries, h.EntrySize, maxEntryBytes)
	}
	if h.FirstUsableLBA > h.LastUsableLBA+1 {
		return nil, formatErr(st, at+40, "first usable LBA %d is past the last usable LBA %d", h.FirstUsableLBA, h.LastUsableLBA)
	}
	return h, nil
}

// ParseGPTEntry decodes one entry (at least 128 bytes).
func ParseGPTEntry(b []byte) GPTEntry {
	le := binary.LittleEndian
	var e GPTEntry
	copy(e.Type[:], b[0:16])
	copy(e.UUID[:], b[16:32])
	e.FirstLBA = le.Uint64(b[32:])
	e.LastLBA = le.Uint64(b[40:])
	e.Attrs = le.Uint64(b[48:])
	u := make([]uint16, 0, 36)
	for i := 56; i+1 < 128; i += 2 {
		c := le.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	e.Name = string(utf16.Decode(u))
	return e
}

// gptCopy is one decoded header with its entry array.
type gptCopy struct {
	h       *GPTHeader
	at      int64 // the header's byte offset
	entries []byte
}

// readGPTCopy reads and checks the header at LBA lba and its entry array.
func readGPTCopy(r io.ReaderAt, size, ss int64, lba uint64, what string) (*gptCopy, error) {
	at := int64(lba) * ss
	if lba >= uint64(size/ss) {
		return nil, formatErr(what, at, "LBA %d is past the disk's end (%d sectors)", lba, size/ss)
	}
	b := make([]byte, ss)
	if err := readFull(r, b, at, what); err != nil {
		return nil, err
	}
	h, err := ParseGPTHeader(b, at)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Struct = what
		}
		return nil, err
	}
	if h.MyLBA != lba {
		return nil, formatErr(what, at+24, "says it is at LBA %d, read at LBA %d", h.MyLBA, lba)
	}
	n := int64(h.NumEntries) * int64(h.EntrySize)
	eat := int64(h.EntriesLBA) * ss
	ewhat := strings.Replace(what, "header", "entries", 1)
	if h.EntriesLBA >= uint64(size/ss) || eat+n > size {
		return nil, formatErr(what, at+72, "entry array at LBA %d (%d bytes) is past the disk's end", h.EntriesLBA, n)
	}
	entries := make([]byte, n)
	if err := readFull(r, entries, eat, ewhat); err != nil {
		return nil, err
	}
	if got := crc32.ChecksumIEEE(entries); got != h.EntriesCRC32 {
		return nil, formatErr(ewhat, eat, "entry array CRC32 is 0x%08x (header at byte %d), computed 0x%08x", h.EntriesCRC32, at+88, got)
	}
	return &gptCopy{h: h, at: at, entries: entries}, nil
}

func readGPT(r io.ReaderAt, size int64) (*Table, error) {
	ss := int64(SectorSize)
	// A 4 KiB-sector disk has its header at byte 4096; the protective MBR looks the same.
	var sig [8]byte
	if _, err := r.ReadAt(sig[:], ss); err == nil && string(sig[:]) != gptSignature && size >= 2*4096 {
		if _, err := r.ReadAt(sig[:], 4096); err == nil && string(sig[:]) == gptSignature {
			ss = 4096
		}
	}
	t := &Table{Scheme: GPT, SectorSize: ss}
	last := uint64(size/ss) - 1
	primary, perr := readGPTCopy(r, size, ss, 1, "gpt header")
	altLBA := last
	if perr == nil {
		altLBA = primary.h.AlternateLBA
	}
	backup, berr := readGPTCopy(r, size, ss, altLBA, "gpt backup header")
	use := primary
	switch {
	case perr == nil:
	case berr == nil:
		use, t.BackupUsed, t.PrimaryErr = backup, true, perr
	default:
		return nil, fmt.Errorf("%w (and the backup: %v)", perr, berr)
	}
	t.BackupErr = berr
	h := use.h
	t.DiskID = h.DiskGUID.String()
	t.FirstUsableLBA, t.LastUsableLBA = h.FirstUsableLBA, h.LastUsableLBA
	if h.LastUsableLBA > last {
		return nil, formatErr("gpt header", use.at+48, "last usable LBA %d is past the disk's last sector %d", h.LastUsableLBA, last)
	}
	entryBytes := int64(h.NumEntries) * int64(h.EntrySize)
	roundUp := func(n int64) int64 { return (n + ss - 1) / ss * ss }
	t.Areas = append(t.Areas, Area{Start: 0, Size: ss, What: "mbr"})
	if primary != nil {
		t.Areas = append(t.Areas,
			Area{Start: primary.at, Size: ss, What: "gpt header"},
			Area{Start: int64(primary.h.EntriesLBA) * ss, Size: roundUp(entryBytes), What: "gpt entries"})
	} else {
		// Where a damaged primary would be, by the backup's description.
		t.Areas = append(t.Areas,
			Area{Start: ss, Size: ss, What: "gpt header"},
			Area{Start: 2 * ss, Size: roundUp(entryBytes), What: "gpt entries"})
	}
	if backup != nil {
		t.Areas = append(t.Areas,
			Area{Start: int64(backup.h.EntriesLBA) * ss, Size: roundUp(entryBytes), What: "gpt backup entries"},
			Area{Start: backup.at, Size: ss, What: "gpt backup header"})
	} else if altLBA <= last {
		t.Areas = append(t.Areas,
			Area{Start: int64(altLBA)*ss - roundUp(entryBytes), Size: roundUp(entryBytes), What: "gpt backup entries"},
			Area{Start: int64(altLBA) * ss, Size: ss, What: "gpt backup header"})
	}
	for i := range int(h.NumEntries) {
		b := use.entries[i*int(h.EntrySize):][:h.EntrySize]
		e := ParseGPTEntry(b)
		if e.Type.IsZero() {
			continue
		}
		eoff := int64(h.EntriesLBA)*ss + int64(i)*int64(h.EntrySize)
		st := fmt.Sprintf("gpt entry %d", i+1)
		if e.FirstLBA > e.LastLBA || e.FirstLBA < h.FirstUsableLBA || e.LastLBA > h.LastUsableLBA {
			return nil, formatErr(st, eoff+32, "LBAs %d-%d, outside the usable %d-%d", e.FirstLBA, e.LastLBA, h.FirstUsableLBA, h.LastUsableLBA)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number:   i + 1,
			Start:    int64(e.FirstLBA) * ss,
			Size:     int64(e.LastLBA-e.FirstLBA+1) * ss,
			Type:     e.Type.String(),
			Kind:     gptKind(e.Type.String()),
			Name:     e.Name,
			UUID:     e.UUID.String(),
			Bootable: e.Attrs&(1<<2) != 0,
			Attrs:    e.Attrs,
		})
	}
	if err := checkOverlap(t); err != nil {
		return nil, err
	}
	return t, nil
}

// gptKind names the GPT types a Linux guest uses.
func gptKind(t string) Kind {
	switch t {
	case "0FC63DAF-8483-4772-8E79-3D69D8477DE4", // Linux filesystem
		"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", // Linux root (x86-64)
		"44479540-F297-41B2-9AF7-D131D5F0458A", // Linux root (x86)
		"B921B045-1DF0-41C3-AF44-4C6F280D3FAE", // Linux root (arm64)
		"933AC7E1-2EB4-4F13-B844-0E14E2AEF915", // Linux /home
		"3B8F8425-20E0-4F3B-907F-1A25A76F98E8", // Linux /srv
		"4D21B016-B534-45C2-A9FB-5C16E091FD2D", // Linux /var
		"BC13C2FF-59E6-4262-A352-B275FD6F7172": // Linux extended boot (/boot)
		return KindLinux
	case "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F":
		return KindSwap
	case "C12A7328-F81F-11D2-BA4B-00A0C93EC93B":
		return KindEFI
	case "21686148-6449-6E6F-744E-656564454649":
		return KindBIOSBoot
	case "E6D6D379-F507-44C2-A23C-238F2A3DF928":
		return KindLVM
	case "A19D880F-05FC-4D3B-A006-743F0F84911E":
		return KindRAID
	}
	return KindOther
}
