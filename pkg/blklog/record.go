// Package blklog defines ext3replay's block-I/O log: the records a guest's
// disk requests become, the native zstd-compressed file format, the NBD
// recorder that captures them from an unmodified QEMU, and importers for
// logs made by other tools. It knows nothing of file systems.
package blklog

// SectorSize is the unit of Record.Sector and of on-disk offsets in logs.
const SectorSize = 512

// Type is the kind of a request.
type Type uint8

const (
	TypeRead        Type = 1
	TypeWrite       Type = 2
	TypeFlush       Type = 3
	TypeDiscard     Type = 4 // trim: content becomes unspecified
	TypeWriteZeroes Type = 5
	TypeMark        Type = 6 // a text mark (Data holds the text)
)

func (t Type) String() string {
	switch t {
	case TypeRead:
		return "read"
	case TypeWrite:
		return "write"
	case TypeFlush:
		return "flush"
	case TypeDiscard:
		return "discard"
	case TypeWriteZeroes:
		return "write-zeroes"
	case TypeMark:
		return "mark"
	}
	return "unknown"
}

// Flags qualify a record.
type Flags uint8

const (
	FlagFUA       Flags = 1 << 0 // forced unit access: durable before completion
	FlagNoPayload Flags = 1 << 1 // a write whose data was not captured (e.g. trace import)
	FlagHasTime   Flags = 1 << 2 // TimeNS is meaningful
)

// Record is one request, in the order the log holds them.
type Record struct {
	Index  int64  // 0-based record number in the log
	Type   Type   //
	Flags  Flags  //
	Sector uint64 // first 512-byte sector
	Length uint32 // bytes (reads, writes, discards, write-zeroes)
	TimeNS int64  // nanoseconds from the start of the capture, when FlagHasTime
	Data   []byte // write payload, read payload when captured, mark text; valid until the next call to Next
	// Omitted, when not nil, marks the parts of a write's Data that the consumer's
	// PayloadFilter let the reader leave out: their bytes are unspecified.
	Omitted *Omissions
}
