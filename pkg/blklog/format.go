package blklog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Native log format, version 1 (docs/log-format.md is the specification).
//
// The file is a sequence of zstd frames whose concatenated content is:
//
//	file header | record | record | ... | end record
//
// All integers are little-endian. Every record carries a CRC-32C so damage
// inside a frame is detected at the record it hits; the end record tells a
// complete log from one cut off by a crash. The same byte stream without zstd
// compression is also a valid native log.

// Magic starts the (decompressed) native log stream.
const Magic = "EXT3RLOG"

// Version is the native format version this package writes.
const Version = 1

// recHeaderSize is the fixed size of a record header on the wire.
const recHeaderSize = 32

// MaxRecordData bounds the payload of one record; larger values are damage.
// NBD clients send at most 32 MiB per request.
const MaxRecordData = 64 << 20

// typeEnd is the wire type of the end record; it is never returned by Next.
const typeEnd = 0xFF

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Format names the kind of log a Reader decodes.
type Format string

const (
	FormatNative      Format = "ext3replay"
	FormatDMLogWrites Format = "dm-log-writes"
	FormatQEMUTrace   Format = "qemu-trace"
)

// Header flag bits (wire).
const (
	hdrHasImage    = 1 << 0 // Image.Size and Image.RegionSHA256 are set
	hdrHasFullHash = 1 << 1 // Image.FullSHA256 is set
)

// ImageID identifies the starting image a log was recorded against.
type ImageID struct {
	Known        bool     // false: the log does not say (e.g. imported dm-log-writes)
	Size         uint64   // bytes
	RegionLen    uint32   // bytes hashed from offset 0 (RegionSize, or Size if smaller)
	RegionSHA256 [32]byte // SHA-256 of the first RegionLen bytes (boot block, superblock, GDT)
	HasFull      bool     //
	FullSHA256   [32]byte // SHA-256 of the whole image, when HasFull
}

// Header describes a log.
type Header struct {
	Format      Format // what the file was decoded as
	Version     uint32 // format version of the file
	SectorSize  uint32 // bytes per Record.Sector unit; always 512 for native logs
	DiskSize    uint64 // bytes; 0 if unknown
	Image       ImageID
	StartUnixNS int64  // wall-clock start of the capture (Unix ns); 0 if unknown
	Source      string // free text: what produced the log, e.g. "ext3replay record"
}

// maxSource bounds Header.Source on the wire.
const maxSource = 4096

// headerFixed is the size of the fixed header body fields (before Source).
const headerFixed = 4 + 4 + 8 + 8 + 4 + 32 + 32 + 8 + 2

// marshalHeader encodes h as the start of a native stream.
func marshalHeader(h *Header) ([]byte, error) {
	if len(h.Source) > maxSource {
		return nil, fmt.Errorf("blklog: header source is %d bytes, limit %d", len(h.Source), maxSource)
	}
	body := headerFixed + len(h.Source)
	b := make([]byte, 16+body+4)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], uint32(body))
	p := b[16:]
	le.PutUint32(p[0:], SectorSize)
	var flags uint32
	if h.Image.Known {
		flags |= hdrHasImage
		if h.Image.HasFull {
			flags |= hdrHasFullHash
		}
	}
	le.PutUint32(p[4:], flags)
	le.PutUint64(p[8:], h.DiskSize)
	le.PutUint64(p[16:], h.Image.Size)
	le.PutUint32(p[24:], h.Image.RegionLen)
	copy(p[28:60], h.Image.RegionSHA256[:])
	copy(p[60:92], h.Image.FullSHA256[:])
	le.PutUint64(p[92:], uint64(h.StartUnixNS))
	le.PutUint16(p[100:], uint16(len(h.Source)))
	copy(p[102:], h.Source)
	le.PutUint32(b[16+body:], crc32.Checksum(b[:16+body], castagnoli))
	return b, nil
}

// errHeader is wrapped by every header decoding error.
var errHeader = errors.New("bad native log header")

// parseHeaderPrefix checks the first 16 bytes and returns the body length.
func parseHeaderPrefix(b []byte) (version uint32, body int, err error) {
	if string(b[:8]) != Magic {
		return 0, 0, fmt.Errorf("%w: magic %q, want %q", errHeader, b[:8], Magic)
	}
	version = binary.LittleEndian.Uint32(b[8:])
	if version != Version {
		return version, 0, fmt.Errorf("%w: version %d, this build reads version %d", errHeader, version, Version)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if n < headerFixed || n > headerFixed+maxSource+1<<16 {
		return version, 0, fmt.Errorf("%w: header body length %d out of range [%d, %d]", errHeader, n, headerFixed, headerFixed+maxSource+1<<16)
	}
	return version, int(n), nil
}

// parseHeader decodes a whole header: 16-byte prefix, body, CRC.
func parseHeader(b []byte) (*Header, error) {
	version, body, err := parseHeaderPrefix(b)
	if err != nil {
		return nil, err
	}
	if len(b) != 16+body+4 {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errHeader, len(b), 16+body+4)
	}
	le := binary.LittleEndian
	if got, want := crc32.Checksum(b[:16+body], castagnoli), le.Uint32(b[16+body:]); got != want {
		return nil, fmt.Errorf("%w: CRC-32C %#08x, stored %#08x", errHeader, got, want)
	}
	p := b[16 : 16+body]
	h := &Header{Format: FormatNative, Version: version}
	h.SectorSize = le.Uint32(p[0:])
	if h.SectorSize != SectorSize {
		return nil, fmt.Errorf("%w: sector size %d, want %d", errHeader, h.SectorSize, SectorSize)
	}
	flags := le.Uint32(p[4:])
	h.DiskSize = le.Uint64(p[8:])
	h.Image.Known = flags&hdrHasImage != 0
	h.Image.HasFull = flags&hdrHasFullHash != 0
	h.Image.Size = le.Uint64(p[16:])
	h.Image.RegionLen = le.Uint32(p[24:])
	copy(h.Image.RegionSHA256[:], p[28:60])
	copy(h.Image.FullSHA256[:], p[60:92])
	h.StartUnixNS = int64(le.Uint64(p[92:]))
	n := int(le.Uint16(p[100:]))
	if 102+n > len(p) {
		return nil, fmt.Errorf("%w: source length %d overruns header body of %d bytes", errHeader, n, body)
	}
	h.Source = string(p[102 : 102+n])
	return h, nil
}

// putRecordHeader encodes r's fixed fields into b[:recHeaderSize] and returns
// the CRC of header plus data.
func putRecordHeader(b []byte, typ uint8, r *Record) {
	le := binary.LittleEndian
	b[0] = typ
	b[1] = uint8(r.Flags)
	b[2], b[3] = 0, 0
	le.PutUint32(b[4:], r.Length)
	le.PutUint64(b[8:], r.Sector)
	le.PutUint64(b[16:], uint64(r.TimeNS))
	le.PutUint32(b[24:], uint32(len(r.Data)))
	c := crc32.Update(0, castagnoli, b[:28])
	c = crc32.Update(c, castagnoli, r.Data)
	le.PutUint32(b[28:], c)
}

// validFlags are the flag bits defined by this version.
const validFlags = FlagFUA | FlagNoPayload | FlagHasTime

// checkRecord verifies the internal consistency of a decoded record, so that
// consumers can rely on it (e.g. a write's payload matches its length).
func checkRecord(r *Record) error {
	if r.Flags&^validFlags != 0 {
		return fmt.Errorf("unknown flag bits %#x", uint8(r.Flags&^validFlags))
	}
	switch r.Type {
	case TypeRead:
		if len(r.Data) != 0 && len(r.Data) != int(r.Length) {
			return fmt.Errorf("read of %d bytes carries %d bytes of payload", r.Length, len(r.Data))
		}
	case TypeWrite:
		if r.Flags&FlagNoPayload != 0 {
			if len(r.Data) != 0 {
				return fmt.Errorf("write marked no-payload carries %d bytes", len(r.Data))
			}
		} else if len(r.Data) != int(r.Length) {
			return fmt.Errorf("write of %d bytes carries %d bytes of payload", r.Length, len(r.Data))
		}
	case TypeFlush:
		if r.Length != 0 || len(r.Data) != 0 {
			return fmt.Errorf("flush with length %d and %d bytes of data", r.Length, len(r.Data))
		}
	case TypeDiscard, TypeWriteZeroes:
		if len(r.Data) != 0 {
			return fmt.Errorf("%v carries %d bytes of data", r.Type, len(r.Data))
		}
	case TypeMark:
		if r.Length != uint32(len(r.Data)) {
			return fmt.Errorf("mark length %d but %d bytes of text", r.Length, len(r.Data))
		}
	default:
		return fmt.Errorf("unknown record type %d", uint8(r.Type))
	}
	if r.Type != TypeFlush && r.Type != TypeMark && r.Length%SectorSize != 0 {
		return fmt.Errorf("%v length %d is not a multiple of %d", r.Type, r.Length, SectorSize)
	}
	return nil
}
