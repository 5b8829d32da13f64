package resolver

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// Edge cases of pairing beyond TestPairingHandBuilt: each change is made with debugfs on a
// copy of an image and its changed blocks are fed in many orders, written home (ext2-like) and,
// for ext3, as one jbd2 transaction.

type edgeCase struct {
	name  string
	setup string   // debugfs commands applied to the seed first (the starting image)
	cmds  string   // the change
	want  []string // namespace ops in meaning() form
	data  []string // paths that must receive data writes
	ext2  bool     // home writes only
	// On ext3, only the journaled form: the I/O of a file created under a directory moved in
	// the same change is attributed as the blocks arrive when the image has a journal, and the
	// kernel never writes ext3 metadata home before its transaction commits.
	journalOnly bool
}

// checkEdge runs one case: every order of the home writes and, on ext3, the journaled form.
func checkEdge(t *testing.T, seed []byte, fsType string, c edgeCase) {
	t.Helper()
	base := seed
	if c.setup != "" {
		base = debugfsChange(t, seed, c.setup)
	}
	after := debugfsChange(t, base, c.cmds)
	recs := blockWrites(base, after)
	if len(recs) == 0 {
		t.Fatal("debugfs changed nothing")
	}
	verify := func(what string, l []blklog.Record) {
		got := analyzeRecords(t, base, l, Options{})
		ns, io, an := meaning(got)
		if len(an) > 0 {
			t.Fatalf("%s: anomalies %q", what, an)
		}
		if !equalStrings(ns, c.want) {
			t.Fatalf("%s: namespace ops\n got %q\nwant %q\nops: %v", what, ns, c.want, got)
		}
		for _, d := range c.data {
			if io["write "+d+" (data)"] == 0 {
				t.Fatalf("%s: no data written to %s: %v", what, d, io)
			}
		}
		for k := range io {
			if strings.HasPrefix(k, "write ") && strings.HasSuffix(k, " (data)") {
				p := strings.TrimSuffix(strings.TrimPrefix(k, "write "), " (data)")
				ok := false
				for _, d := range c.data {
					ok = ok || d == p
				}
				if !ok {
					t.Fatalf("%s: data written to %s, want only %q: %v", what, p, c.data, io)
				}
			}
		}
		checkEmittedOnce(t, got)
	}
	rng := rand.New(rand.NewSource(int64(len(recs))))
	ords := orders(len(recs), rng)
	if len(ords) > 60 {
		ords = ords[:60]
	}
	for _, ord := range ords {
		if fsType == "ext3" && c.journalOnly {
			break
		}
		perm := make([]blklog.Record, len(recs))
		for i, j := range ord {
			perm[i] = recs[j]
		}
		verify(fmt.Sprintf("home order %v", ord), perm)
	}
	if fsType != "ext3" || c.ext2 {
		return
	}
	data, journal, checkpoint := journalize(t, base, after)
	for round := 0; round < 10; round++ {
		var log []blklog.Record
		if round == 0 {
			log = append(append(log, data...), journal...)
		} else {
			all := append(append([]blklog.Record(nil), data...), journal...)
			for _, i := range rng.Perm(len(all)) {
				log = append(log, all[i])
			}
		}
		withCkpt := append(append(append([]blklog.Record(nil), log...), blklog.Record{Type: blklog.TypeFlush}), checkpoint...)
		verify(fmt.Sprintf("journal round %d", round), log)
		verify(fmt.Sprintf("journal round %d + checkpoint", round), withCkpt)
	}
}

func longName(c byte, n int) string { return strings.Repeat(string(c), n) }

func TestPairingEdgeCases(t *testing.T) {
	needTools(t)
	n255 := longName('L', 255)
	var grow strings.Builder
	var growWant []string
	for i := 0; i < 6; i++ {
		nm := fmt.Sprintf("%c%s", 'a'+i, longName('n', 199))
		fmt.Fprintf(&grow, "write /dev/null /e/%s\n", nm)
		growWant = append(growWant, "create /e/"+nm)
	}
	cases := []edgeCase{
		{name: "move a directory then create under the new path",
			cmds: "ln /x/y /d/y\nunlink /x/y\nwrite CONTENT /d/y/new\n",
			want: []string{"create /d/y/new", "move /x/y -> /d/y"}, data: []string{"/d/y/new"}, journalOnly: true},
		{name: "move a directory over an empty one",
			cmds: "kill_file /empty\nunlink /empty\nln /e /empty\nunlink /e\n",
			want: []string{"move /e -> /empty (overwrite)"}},
		{name: "moved twice",
			cmds: "ln /d/f /e/tmp\nunlink /d/f\nln /e/tmp /x/final\nunlink /e/tmp\n",
			want: []string{"move /d/f -> /x/final"}},
		{name: "create then delete",
			cmds: "write CONTENT /d/new\nrm /d/new\n",
			want: nil},
		{name: "link then delete the original",
			cmds: "ln /d/f /e/f2\nsif /d/f links_count 2\nrm /d/f\n",
			want: []string{"move /d/f -> /e/f2"}},
		{name: "symlink replaced by a file",
			setup: "symlink /d/ln /d/f\n",
			cmds:  "rm /d/ln\nwrite CONTENT /d/ln\n",
			want:  []string{"create /d/ln", "delete /d/ln"}, data: []string{"/d/ln"}},
		{name: "delete and create again under the same name",
			cmds: "rm /d/f\nwrite CONTENT /d/f\nsif /d/f generation 7\n",
			want: []string{"create /d/f", "delete /d/f"}, data: []string{"/d/f"}},
		{name: "truncate to non-zero",
			cmds: "punch /d/g 1\nsif /d/g size 700\n",
			want: []string{"truncate /d/g size=700"}},
		{name: "255-byte names",
			cmds: "write CONTENT /d/" + n255 + "\nmkdir /e/" + n255 + "\nln /x/y/z /x/" + n255 + "\nunlink /x/y/z\n",
			want: []string{"create /d/" + n255, "mkdir /e/" + n255, "move /x/y/z -> /x/" + n255},
			data: []string{"/d/" + n255}},
		{name: "directory grows a second block",
			cmds: grow.String(), want: growWant},
		{name: "block freed and reused by another file",
			cmds: "rm /x/y/z\nwrite CONTENT /x/new\nsif /x/new generation 7\n",
			want: []string{"create /x/new", "delete /x/y/z"}, data: []string{"/x/new"}, journalOnly: true},
	}
	for _, fsType := range []string{"ext2", "ext3"} {
		seed := seedImage(t, fsType)
		for _, c := range cases {
			t.Run(fsType+"/"+c.name, func(t *testing.T) { checkEdge(t, seed, fsType, c) })
		}
	}
}

// TestPairingTIND: a sparse file on a 1K-block image whose only data block is reached through
// the triple-indirect block.
func TestPairingTIND(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	host := filepath.Join(dir, "sparse")
	f, err := os.Create(host)
	if err != nil {
		t.Fatal(err)
	}
	const off = (12 + 256 + 256*256 + 5) * 1024 // file block 65809: under the TIND
	if _, err := f.WriteAt([]byte("tail of a sparse file\n"), off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, fsType := range []string{"ext2", "ext3"} {
		seed := seedImage(t, fsType)
		t.Run(fsType, func(t *testing.T) {
			checkEdge(t, seed, fsType, edgeCase{cmds: "write " + host + " /d/big\n",
				want: []string{"create /d/big"}, data: []string{"/d/big"}})
		})
	}
}
