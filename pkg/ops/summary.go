package ops

import (
	"errors"
	"fmt"
	"math"
)

// Volume counts reads and writes and their bytes. Sums saturate at math.MaxInt64 instead of
// wrapping (a hostile run claiming exabytes printed "WRITTEN -2 B"), and set Overflow.
type Volume struct {
	Reads      int64 `json:"reads"`
	ReadBytes  int64 `json:"read_bytes"`
	Writes     int64 `json:"writes"`
	WriteBytes int64 `json:"write_bytes"`
	Overflow   bool  `json:"overflow,omitempty"` // a sum passed math.MaxInt64 and was clamped there
}

// add returns a+b for non-negative counts, clamped at math.MaxInt64, and whether it clamped.
func add(a, b int64) (int64, bool) {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64, true
	}
	return a + b, false
}

// sum adds b to *a, recording a clamp in v.Overflow.
func (v *Volume) sum(a *int64, b int64) {
	var o bool
	*a, o = add(*a, b)
	v.Overflow = v.Overflow || o
}

// Add counts one read or write op; other ops are ignored.
func (v *Volume) Add(op *Op) {
	switch op.Op {
	case Read:
		v.sum(&v.Reads, 1)
		v.sum(&v.ReadBytes, op.Bytes)
	case Write:
		v.sum(&v.Writes, 1)
		v.sum(&v.WriteBytes, op.Bytes)
	}
}

// Merge adds u to v.
func (v *Volume) Merge(u Volume) {
	v.sum(&v.Reads, u.Reads)
	v.sum(&v.ReadBytes, u.ReadBytes)
	v.sum(&v.Writes, u.Writes)
	v.sum(&v.WriteBytes, u.WriteBytes)
	v.Overflow = v.Overflow || u.Overflow
}

// Bytes is read plus written bytes (clamped at math.MaxInt64).
func (v Volume) Bytes() int64 {
	n, _ := add(v.ReadBytes, v.WriteBytes)
	return n
}

// ErrOverflow is returned by the stats and diff renderers when a byte or op count passed
// math.MaxInt64: no I/O log can hold that much, so the input is hostile or corrupt, and
// printing clamped sums would be a wrong answer.
var ErrOverflow = errors.New("byte or op counts overflow a 64-bit integer (the ops claim more than 8 EiB of I/O); refusing to print wrong sums")

// IsZero reports whether nothing was counted.
func (v Volume) IsZero() bool { return v == Volume{} }

// Totals splits the I/O of a run into the classes stats and diff report.
// Every read or write op lands in exactly one of FileData, Metadata,
// Journal and Unattributed, so the four add up to All.
type Totals struct {
	All          Volume          `json:"all"`
	FileData     Volume          `json:"file_data"`    // kind data with a path
	Metadata     Volume          `json:"metadata"`     // dir, indirect, inode, bitmap, super, gdt
	Journal      Volume          `json:"journal"`      // kind journal
	Unattributed Volume          `json:"unattributed"` // kind unowned, or data without a path
	ByKind       map[Kind]Volume `json:"by_kind"`
}

// Add counts one op; only reads and writes count.
func (t *Totals) Add(op *Op) {
	if !op.IsIO() {
		return
	}
	t.All.Add(op)
	switch {
	case op.Kind == KindJournal:
		t.Journal.Add(op)
	case op.Kind.IsMetadata():
		t.Metadata.Add(op)
	case op.Kind == KindData && op.Path != "":
		t.FileData.Add(op)
	default:
		t.Unattributed.Add(op)
	}
	if t.ByKind == nil {
		t.ByKind = make(map[Kind]Volume)
	}
	v := t.ByKind[op.Kind]
	v.Add(op)
	t.ByKind[op.Kind] = v
}

// WriteAmplification is bytes written to the disk per byte of file data
// written (0 when no file data was written).
func (t *Totals) WriteAmplification() float64 { return ratio(t.All.WriteBytes, t.FileData.WriteBytes) }

// MetadataAmplification is metadata bytes written per byte of file data.
func (t *Totals) MetadataAmplification() float64 {
	return ratio(t.Metadata.WriteBytes, t.FileData.WriteBytes)
}

// JournalAmplification is journal bytes written per byte of file data.
func (t *Totals) JournalAmplification() float64 {
	return ratio(t.Journal.WriteBytes, t.FileData.WriteBytes)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// HumanBytes formats n with binary units: "512 B", "4.0 KiB", "1.5 GiB".
func HumanBytes(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	var s string
	if n < 1024 {
		s = fmt.Sprintf("%d B", n)
	} else {
		units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
		f := float64(n) / 1024
		i := 0
		for f >= 1024 && i < len(units)-1 {
			f /= 1024
			i++
		}
		s = fmt.Sprintf("%.1f %s", f, units[i])
	}
	if neg {
		return "-" + s
	}
	return s
}
