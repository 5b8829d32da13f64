package ops

import (
	"bytes"
	"strings"
	"testing"
)

func TestBodyWriter(t *testing.T) {
	size := uint64(0)
	run := []Op{
		{Seq: 3, T: 1.5, Op: Create, Path: "/a|b%c\nd", Ino: 12},
		{Seq: 4, T: 1.75, Op: Write, Path: "/a|b%c\nd", Ino: 12, Sector: 80, Bytes: 4096, Kind: KindData},
		{Seq: 5, T: 2, Op: Read, Sector: 8, Bytes: 1024, Kind: KindInode},
		{Seq: 6, T: 2.25, Op: Move, Path: "/x", To: "/y", Ino: 13, Overwrite: true},
		{Seq: 7, T: 2.5, Op: Truncate, Path: "/y", Ino: 13, Size: &size},
		{Seq: 8, T: 3, Op: Mkdir, Path: "/d", Ino: 14},
	}
	write := func(c *Clock) []string {
		var buf bytes.Buffer
		w := NewBodyWriter(&buf, c)
		for i := range run {
			if err := w.Write(&run[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	}
	want := []string{
		"0|/a%7Cb%25c%0Ad (create) #3|12|r/r---------|0|0|0|0|0|0|1700000001.500000",
		"0|/a%7Cb%25c%0Ad (write 4096 bytes at sector 80) #4|12|r/r---------|0|0|4096|0|1700000001.750000|0|0",
		"0|- (read 1024 bytes at sector 8, inode) #5|0|-/----------|0|0|1024|1700000002.000000|0|0|0",
		"0|/x (move -> /y, overwrite) #6|13|-/----------|0|0|0|0|0|1700000002.250000|0",
		"0|/y (truncate to 0) #7|13|r/r---------|0|0|0|0|1700000002.500000|0|0",
		"0|/d (mkdir) #8|14|d/d---------|0|0|0|0|0|0|1700000003.000000",
	}
	got := write(&Clock{StartUnixNS: 1700000000_000000000})
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
	// No start: seconds from the start of the log; no time at all: the record number.
	if got := write(&Clock{}); !strings.HasSuffix(got[0], "|0|0|0|1.500000") {
		t.Errorf("relative: %s", got[0])
	}
	if got := write(&Clock{NoTime: true}); !strings.HasSuffix(got[1], "|0|4|0|0") {
		t.Errorf("no time: %s", got[1])
	}
}

func TestTextTimeOptions(t *testing.T) {
	op := Op{Seq: 1, T: 4.25, Op: Mkdir, Path: "/p"}
	line := func(o TextOptions) string {
		var buf bytes.Buffer
		w, err := NewTextWriter(&buf, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&op); err != nil {
			t.Fatal(err)
		}
		w.Close()
		return buf.String()
	}
	if got := line(TextOptions{}); got != "mkdir   /p\n" {
		t.Errorf("none: %q", got)
	}
	if got := line(TextOptions{Time: "rel"}); got != "    4.250000 mkdir   /p\n" {
		t.Errorf("rel: %q", got)
	}
	if got := line(TextOptions{Time: "abs", Clock: &Clock{StartUnixNS: 1700000000_000000000}}); got != "2023-11-14T22:13:24.250000Z mkdir   /p\n" {
		t.Errorf("abs: %q", got)
	}
	if _, err := NewTextWriter(&bytes.Buffer{}, TextOptions{Time: "abs"}); err == nil {
		t.Error("abs without a start time: no error")
	}
	if _, err := NewTextWriter(&bytes.Buffer{}, TextOptions{Time: "later"}); err == nil {
		t.Error("unknown mode: no error")
	}
}
