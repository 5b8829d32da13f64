// Package ops defines the file operations ext3replay reports, their output
// formats (text, jsonl, csv), per-file statistics and the comparison of runs.
//
// The jsonl field names and the op and kind vocabularies are a public
// interface (docs/output-formats.md): scripts depend on them.
package ops

import ()

// Type is what happened, as printed in the "op" field.
type Type string

const (
	Read     Type = "read"
	Write    Type = "write"
	Create   Type = "create"  // a regular file got its first name
	Mkdir    Type = "mkdir"   // a directory got its first name
	Symlink  Type = "symlink" // a symbolic link got its first name
	Mknod    Type = "mknod"   // a device, fifo or socket got its first name
	Delete   Type = "delete"  // the last name of a non-directory was removed
	Rmdir    Type = "rmdir"   // a directory was removed
	Move     Type = "move"    // a name moved (rename), Path -> To
	Link     Type = "link"    // a hard link was added: existing Path, new name To
	Unlink   Type = "unlink"  // a name was removed while the inode keeps others
	Truncate Type = "truncate"
	Anomaly  Type = "anomaly" // a write that cannot be a valid structure of its kind
)

// Kind says what sort of block a read or write touched.
type Kind string

const (
	KindData     Kind = "data"
	KindDir      Kind = "dir"
	KindIndirect Kind = "indirect"
	KindExtent   Kind = "extent" // an ext4 extent tree's index or leaf block (the root is in the inode)
	KindInode    Kind = "inode"
	KindBitmap   Kind = "bitmap"
	KindSuper    Kind = "super"
	KindGDT      Kind = "gdt"
	KindJournal  Kind = "journal"
	KindUnowned  Kind = "unowned"
	// The kinds of I/O outside any ext2/3/4 file system of a partitioned disk: the partition
	// table's own sectors (MBR, EBRs, GPT headers and entries; metadata), a swap partition, a
	// partition with no ext file system, and sectors outside every partition.
	KindPartitionTable Kind = "partition-table"
	KindSwap           Kind = "swap"
	KindPartition      Kind = "partition"
	KindUnpartitioned  Kind = "unpartitioned"
)

// IsMetadata reports whether I/O of this kind is file-system bookkeeping
// rather than a file's own bytes (dir and indirect blocks count as metadata).
func (k Kind) IsMetadata() bool {
	switch k {
	case KindData, KindUnowned, KindSwap, KindPartition, KindUnpartitioned, "":
		return false
	}
	return true
}

// Op is one reported operation. Zero-valued optional fields are omitted
// from jsonl output, except "sector" and "bytes" of reads and writes, which
// are always present (sector 0 is a real place: the boot block).
type Op struct {
	Seq       int64   `json:"seq"`                 // index of the log record that made it certain
	T         float64 `json:"t,omitempty"`         // seconds from the start of the log, when it has time
	Op        Type    `json:"op"`                  //
	Path      string  `json:"path,omitempty"`      // full path at that moment
	To        string  `json:"to,omitempty"`        // move: new path; link: the new name
	Ino       uint32  `json:"ino,omitempty"`       // inode number
	Sector    uint64  `json:"sector,omitempty"`    // read/write: first 512-byte sector
	Bytes     int64   `json:"bytes,omitempty"`     // read/write: length in bytes
	Kind      Kind    `json:"kind,omitempty"`      // read/write: what the blocks are
	Overwrite bool    `json:"overwrite,omitempty"` // move: replaced an existing file
	Size      *uint64 `json:"size,omitempty"`      // truncate: the new size
	Reason    string  `json:"reason,omitempty"`    // anomaly: what is wrong
	Partition int     `json:"partition,omitempty"` // partitioned disk: the partition number (/dev/vdaN)
}

// MarshalJSON encodes o with the field order and omission rules of the
// public jsonl schema (docs/output-formats.md), as the jsonl writer does.
func (o Op) MarshalJSON() ([]byte, error) { return appendJSON(nil, &o) }

// IsIO reports whether the op is a read or a write.
func (o *Op) IsIO() bool { return o.Op == Read || o.Op == Write }

// IsNamespace reports whether the op changes the directory tree or a size.
func (o *Op) IsNamespace() bool {
	switch o.Op {
	case Create, Mkdir, Symlink, Mknod, Delete, Rmdir, Move, Link, Unlink, Truncate:
		return true
	}
	return false
}
