package ops

import (
	"strings"
	"testing"
)

func fileByKey(s *Stats, key string) *FileStats {
	for _, f := range s.Files {
		if f.Key() == key {
			return f
		}
	}
	return nil
}

func TestStatsFollowsFiles(t *testing.T) {
	s := BuildStats(loadRun(t, "run-a.jsonl"))
	a := fileByKey(s, "/home/debian/d/a")
	if a == nil {
		t.Fatal("no row for /home/debian/d/a")
	}
	// The write after the rename belongs to the same file.
	if a.Data.Writes != 2 || a.Data.WriteBytes != 65536+8192 {
		t.Errorf("a: data %+v, want 2 writes of 72 KiB", a.Data)
	}
	if a.Metadata.WriteBytes != 4096 || a.WriteAmplification() != float64(65536+8192+4096)/float64(65536+8192) {
		t.Errorf("a: metadata %+v amp %v", a.Metadata, a.WriteAmplification())
	}
	if a.State != "moved to /home/debian/d/c, /home/debian/hard" || a.FirstSeq != 9 || a.LastSeq != 36 {
		t.Errorf("a: state %q first %d last %d", a.State, a.FirstSeq, a.LastSeq)
	}
	b := fileByKey(s, "/home/debian/d/b")
	if b.State != "deleted (replaced by move of /home/debian/d/new.tmp)" || b.Size == nil || *b.Size != 0 {
		t.Errorf("b: %q size %v", b.State, b.Size)
	}
	if x := fileByKey(s, "/tmp/x"); x.State != "deleted" || strings.Join(x.History, ",") != "create,delete" {
		t.Errorf("/tmp/x: %q %v", x.State, x.History)
	}
	if d := fileByKey(s, "/home/debian"); d.Type != "dir" || d.Anomalies != 1 || d.Created {
		t.Errorf("/home/debian: %+v", d)
	}
	// Journal and pathless metadata are run totals, never a file's.
	if s.Totals.Journal.WriteBytes != 36864 || s.Totals.Unattributed.WriteBytes != 4096 {
		t.Errorf("totals %+v", s.Totals)
	}
	sum := s.Totals.FileData
	sum.Merge(s.Totals.Metadata)
	sum.Merge(s.Totals.Journal)
	sum.Merge(s.Totals.Unattributed)
	if sum != s.Totals.All {
		t.Errorf("classes %+v do not add up to all %+v", sum, s.Totals.All)
	}
}

func TestStatsRecreatedName(t *testing.T) {
	run := []Op{
		{Seq: 1, Op: Create, Path: "/f"}, w(2, "/f", 100, 4096), {Seq: 3, Op: Delete, Path: "/f"},
		{Seq: 4, Op: Create, Path: "/f"}, w(5, "/f", 200, 8192),
	}
	s := BuildStats(run)
	if len(s.Files) != 2 || s.Files[0].State != "deleted" || s.Files[1].Key() != "/f #2" || s.Files[1].Data.WriteBytes != 8192 {
		t.Fatalf("got %+v %+v", s.Files[0], s.Files[1])
	}
	// Data seen before the create that makes it certain is the new file's.
	s = BuildStats([]Op{w(1, "/g", 100, 4096), {Seq: 2, Op: Create, Path: "/g"}})
	if len(s.Files) != 1 || !s.Files[0].Created || s.Files[0].Data.WriteBytes != 4096 {
		t.Fatalf("I/O before create: %+v", s.Files)
	}
	// A directory rename carries the files under it.
	s = BuildStats([]Op{{Seq: 1, Op: Mkdir, Path: "/d"}, {Seq: 2, Op: Create, Path: "/d/f"},
		{Seq: 3, Op: Move, Path: "/d", To: "/e"}, w(4, "/e/f", 100, 4096)})
	if f := fileByKey(s, "/d/f"); f == nil || f.State != "moved to /e/f" || f.Data.WriteBytes != 4096 {
		t.Fatalf("after dir rename: %+v", s.Files)
	}
}

func TestStatsRows(t *testing.T) {
	s := BuildStats(loadRun(t, "run-a.jsonl"))
	paths := func(o StatsOptions) string {
		rows, err := s.Rows(o)
		if err != nil {
			t.Fatal(err)
		}
		var p []string
		for _, r := range rows {
			p = append(p, r.Path)
		}
		return strings.Join(p, " ")
	}
	cases := []struct {
		o    StatsOptions
		want string
	}{
		{StatsOptions{Sort: "writes", Top: 2}, "/home/debian/d/a /home/debian/d/b"},
		{StatsOptions{Sort: "reads", Top: 2}, "/bin/dd /etc/passwd"},
		{StatsOptions{Sort: "bytes", Top: 1}, "/home/debian/d/a"},
		{StatsOptions{Prefix: "/home/debian/d"}, "/home/debian/d /home/debian/d/a /home/debian/d/b /home/debian/d/new.tmp"},
		{StatsOptions{Prefix: "/home/deb"}, ""},
		{StatsOptions{Glob: "*.tmp"}, "/home/debian/d/new.tmp"},
		{StatsOptions{Glob: "/home/*"}, "/home/debian"},
		// A file matches by any of its names: d/a is also /home/debian/hard.
		{StatsOptions{Glob: "/home/debian/*"}, "/home/debian/d /home/debian/d/a"},
		{StatsOptions{By: "dir", Depth: 0}, "/"},
		{StatsOptions{By: "dir", Depth: 1, Sort: "path"}, "/bin /etc /home /tmp"},
		{StatsOptions{By: "dir", Depth: 2, Sort: "writes", Top: 1}, "/home/debian"},
	}
	for _, c := range cases {
		if got := paths(c.o); got != c.want {
			t.Errorf("%+v: got %q want %q", c.o, got, c.want)
		}
	}
	for _, bad := range []StatsOptions{{By: "disk"}, {Sort: "size"}, {Top: -1}, {Depth: -2}, {Glob: "["}} {
		if _, err := s.Rows(bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	// The dir roll-up accounts for every row's bytes.
	rows, _ := s.Rows(StatsOptions{By: "dir", Depth: 0})
	var all Volume
	for _, f := range s.Files {
		all.Merge(f.Data)
		all.Merge(f.Metadata)
	}
	if rows[0].Files != len(s.Files) || rows[0].Bytes() != all.Bytes() {
		t.Errorf("root roll-up %d files %d bytes, want %d and %d", rows[0].Files, rows[0].Bytes(), len(s.Files), all.Bytes())
	}
}
