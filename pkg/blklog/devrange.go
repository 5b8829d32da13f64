package blklog

import (
	"fmt"
	"math"
)

// MaxDeviceBytes is the largest byte offset a record may reach: offsets are handed to
// io.ReaderAt and friends as int64. Anything beyond is not a disk, it is damage.
const MaxDeviceBytes = math.MaxInt64

// ByteRange returns the byte range [off, end) of the device that r covers, and false if the
// arithmetic overflows (Sector*512+Length beyond MaxDeviceBytes). Flushes and marks cover nothing.
func (r *Record) ByteRange() (off, end uint64, ok bool) {
	if r.Type == TypeFlush || r.Type == TypeMark {
		return 0, 0, true
	}
	if r.Sector > (MaxDeviceBytes-uint64(r.Length))/SectorSize {
		return 0, 0, false
	}
	off = r.Sector * SectorSize
	return off, off + uint64(r.Length), true
}

// RangeError is a record whose byte range overflows or lies beyond the end of the device.
type RangeError struct {
	Index      int64 // record number
	Type       Type
	Sector     uint64
	Length     uint32
	DeviceSize uint64 // bytes; 0 when only the overflow was checked
	Overflow   bool   // the byte range does not fit MaxDeviceBytes
}

func (e *RangeError) Error() string {
	if e.Overflow {
		return fmt.Sprintf("record %d: %v at sector %d, %d bytes: byte offset overflows (beyond %d)", e.Index, e.Type, e.Sector, e.Length, uint64(MaxDeviceBytes))
	}
	return fmt.Sprintf("record %d: %v at sector %d (byte %d), %d bytes, lies beyond the end of the %d-byte device",
		e.Index, e.Type, e.Sector, e.Sector*SectorSize, e.Length, e.DeviceSize)
}

// CheckDeviceRange returns a *RangeError if r's byte range overflows, or, when size is not 0,
// does not lie inside a device of size bytes. Flushes and marks always pass. Readers check the
// overflow themselves, and the device size when their log records it (native header DiskSize);
// a consumer that knows the image (analyze, import --image) checks every record against it.
func CheckDeviceRange(r *Record, size uint64) error {
	_, end, ok := r.ByteRange()
	if !ok || (size != 0 && end > size) {
		return &RangeError{Index: r.Index, Type: r.Type, Sector: r.Sector, Length: r.Length, DeviceSize: size, Overflow: !ok}
	}
	return nil
}
