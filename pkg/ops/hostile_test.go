package ops

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestTruncateCell(t *testing.T) {
	if s := strings.Repeat("é", MaxCellBytes/2); TruncateCell(s) != s {
		t.Error("a cell of exactly MaxCellBytes was cut")
	}
	s := "a" + strings.Repeat("é", MaxCellBytes) // 2-byte runes: the cut must not split one
	got := TruncateCell(s)
	want := "a" + strings.Repeat("é", (MaxCellBytes-1)/2) + TruncMarker + "258 bytes]"
	if got != want {
		t.Errorf("got %q", got)
	}
}

// Two writes of 2^62 bytes each: the sum used to wrap to a negative number ("WRITTEN -2 B",
// exit 0). Sums now clamp and mark the Volume, and diff refuses them (render.Stats refuses to
// print them; its tests check that).
func TestSumsOverflow(t *testing.T) {
	run := []Op{
		{Seq: 1, Op: Create, Path: "/big", Ino: 12},
		{Seq: 2, Op: Write, Path: "/big", Ino: 12, Sector: 0, Bytes: 1 << 62, Kind: KindData},
		{Seq: 3, Op: Write, Path: "/big", Ino: 12, Sector: 8, Bytes: 1 << 62, Kind: KindData},
	}
	s := BuildStats(run)
	if !s.Totals.All.Overflow || s.Totals.All.WriteBytes != math.MaxInt64 {
		t.Fatalf("totals %+v, want clamped and marked", s.Totals.All)
	}
	if _, err := Diff(run, run[:2], DiffOptions{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("diff: %v", err)
	}
	var v Volume
	v.Merge(Volume{ReadBytes: math.MaxInt64})
	v.Merge(Volume{ReadBytes: 1})
	if !v.Overflow || v.ReadBytes != math.MaxInt64 || v.Bytes() != math.MaxInt64 {
		t.Errorf("merge: %+v", v)
	}
}

// The text op format quotes names (it always did) and now also an anomaly's reason, which can
// carry bytes from the image.
func TestTextFormatQuotesReason(t *testing.T) {
	op := Op{Seq: 1, Op: Anomaly, Path: "/d\x1b[2J", Reason: "entry name \"x\x1b[2J\" is not valid"}
	line := string(AppendText(nil, &op))
	if strings.ContainsRune(line, 0x1b) || strings.Count(line, "\n") != 1 {
		t.Fatalf("%q", line)
	}
}
