package blklog

import (
	"fmt"
	"io"
)

// Apply performs r on the disk dst: writes store their payload;
// write-zeroes and discards store zeroes (what the recorder's state file
// holds after a trim); reads, flushes and marks change nothing. A write
// without payload cannot be applied and is an error.
func Apply(r *Record, dst io.WriterAt) error {
	off := int64(r.Sector) * SectorSize
	switch r.Type {
	case TypeWrite:
		if r.Flags&FlagNoPayload != 0 {
			return fmt.Errorf("blklog: record %d: write at sector %d has no payload to apply", r.Index, r.Sector)
		}
		if _, err := dst.WriteAt(r.Data, off); err != nil {
			return fmt.Errorf("blklog: applying record %d at byte %d: %w", r.Index, off, err)
		}
	case TypeWriteZeroes, TypeDiscard:
		for n := int64(r.Length); n > 0; {
			k := min(n, int64(len(zeroBuf)))
			if _, err := dst.WriteAt(zeroBuf[:k], off); err != nil {
				return fmt.Errorf("blklog: applying record %d at byte %d: %w", r.Index, off, err)
			}
			off += k
			n -= k
		}
	}
	return nil
}
