package ops

import (
	"errors"
	"fmt"
)

// Types lists every op type in the order documented in docs/output-formats.md.
var Types = []Type{Create, Mkdir, Symlink, Mknod, Move, Link, Unlink, Delete, Rmdir, Truncate, Read, Write, Anomaly}

// Kinds lists every I/O kind in the order documented in docs/output-formats.md.
var Kinds = []Kind{KindData, KindDir, KindIndirect, KindExtent, KindInode, KindBitmap, KindSuper, KindGDT, KindJournal, KindUnowned,
	KindPartitionTable, KindSwap, KindPartition, KindUnpartitioned}

// Known reports whether t is part of the op vocabulary.
func (t Type) Known() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// Known reports whether k is part of the kind vocabulary.
func (k Kind) Known() bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// Validate checks that an op is well formed for its type: a known op and
// kind, the fields its type needs, and none that would be silently ignored.
// ReadJSONL applies it to every line so that stats and diff never work on
// half-understood input.
func (o *Op) Validate() error {
	if o.Op == "" {
		return errors.New(`missing "op"`)
	}
	if !o.Op.Known() {
		return fmt.Errorf("unknown op %q", o.Op)
	}
	if o.Kind != "" && !o.Kind.Known() {
		return fmt.Errorf("unknown kind %q", o.Kind)
	}
	if o.Seq < 0 {
		return fmt.Errorf("negative seq %d", o.Seq)
	}
	if o.T < 0 {
		return fmt.Errorf("negative t %g", o.T)
	}
	switch o.Op {
	case Read, Write:
		if o.Bytes <= 0 {
			return fmt.Errorf("%s without a positive \"bytes\"", o.Op)
		}
		if o.Kind == "" {
			return fmt.Errorf("%s without \"kind\"", o.Op)
		}
	case Move, Link:
		if o.Path == "" || o.To == "" {
			return fmt.Errorf("%s needs both \"path\" and \"to\"", o.Op)
		}
	case Truncate:
		if o.Path == "" {
			return errors.New(`truncate without "path"`)
		}
		if o.Size == nil {
			return errors.New(`truncate without "size"`)
		}
	case Anomaly:
		if o.Reason == "" {
			return errors.New(`anomaly without "reason"`)
		}
	default: // create, mkdir, symlink, mknod, delete, rmdir, unlink
		if o.Path == "" {
			return fmt.Errorf("%s without \"path\"", o.Op)
		}
	}
	if o.Overwrite && o.Op != Move {
		return fmt.Errorf(`"overwrite" on a %s (only move has it)`, o.Op)
	}
	if o.To != "" && o.Op != Move && o.Op != Link {
		return fmt.Errorf(`"to" on a %s (only move and link have it)`, o.Op)
	}
	return nil
}
