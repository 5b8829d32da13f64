package resolver

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// journalize turns a change made by debugfs (base -> after, written home) into what ext3 in
// data=ordered mode writes: file data home, the metadata blocks as one jbd2 transaction (made
// with debugfs' journal writer), and the checkpoint writes of those blocks.
func journalize(t *testing.T, base, after []byte) (data, journal, checkpoint []blklog.Record) {
	t.Helper()
	fs, err := ext3fs.Open(bytes.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := BuildIndex(fs)
	if err != nil {
		t.Fatal(err)
	}
	// One jw command is one transaction: give it every metadata block at once (a list of
	// blocks and a file of their contents in that order), as the kernel commits one
	// operation's blocks together.
	var blocks []string
	var content []byte
	for _, rec := range blockWrites(base, after) {
		b := rec.Sector / 2
		if idx.Lookup(b).Role == RoleData {
			data = append(data, rec)
			continue
		}
		blocks = append(blocks, fmt.Sprint(b))
		content = append(content, rec.Data...)
		checkpoint = append(checkpoint, rec)
	}
	f := filepath.Join(t.TempDir(), "blocks")
	if err := os.WriteFile(f, content, 0o644); err != nil {
		t.Fatal(err)
	}
	cmds := fmt.Sprintf("jo\njw -b %s %s\njc\n", strings.Join(blocks, ","), f)
	journal = blockWrites(base, ext3fstest.DebugfsChange(t, base, cmds))
	return data, journal, checkpoint
}

// TestJournaledHandBuilt replays hand-built ext3 transactions: the operations come from the
// journal alone (no checkpoint), in any order of the transaction's blocks and of the data
// around it, and a later checkpoint reports nothing new.
func TestJournaledHandBuilt(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext3")
	cases := []struct {
		name, cmds string
		want       []string
		data       string
	}{
		{"create", "write CONTENT /d/new\n", []string{"create /d/new"}, "/d/new"},
		{"mkdir", "mkdir /e/sub\n", []string{"mkdir /e/sub"}, ""},
		{"move across directories", "ln /d/f /e/f\nunlink /d/f\n", []string{"move /d/f -> /e/f"}, ""},
		{"delete", "rm /d/f\n", []string{"delete /d/f"}, ""},
		{"unlink", "rm /d/g\n", []string{"unlink /d/g"}, ""},
		{"link", "ln /d/f /e/f2\nsif /d/f links_count 2\n", []string{"link /d/f -> /e/f2"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			after := ext3fstest.DebugfsChange(t, base, c.cmds)
			data, journal, checkpoint := journalize(t, base, after)
			if len(journal) < 3 {
				t.Fatalf("debugfs wrote %d journal blocks", len(journal))
			}
			rng := rand.New(rand.NewSource(7))
			for round := 0; round < 30; round++ {
				var log []blklog.Record
				switch round {
				case 0: // as the kernel: data, then the transaction in log order
					log = append(append(log, data...), journal...)
				case 1: // the transaction backwards, then the data
					for i := len(journal) - 1; i >= 0; i-- {
						log = append(log, journal[i])
					}
					log = append(log, data...)
				default:
					all := append(append([]blklog.Record(nil), data...), journal...)
					for _, i := range rng.Perm(len(all)) {
						log = append(log, all[i])
					}
				}
				withCkpt := append(append(append([]blklog.Record(nil), log...), blklog.Record{Type: blklog.TypeFlush}), checkpoint...)
				for _, l := range [][]blklog.Record{log, withCkpt} {
					got := analyzeRecords(t, base, l, Options{})
					ns, io, an := meaning(got)
					if len(an) > 0 {
						t.Fatalf("round %d: anomalies %q", round, an)
					}
					if !equalStrings(ns, c.want) {
						t.Fatalf("round %d (%d records): namespace ops\n got %q\nwant %q", round, len(l), ns, c.want)
					}
					if c.data != "" && io["write "+c.data+" (data)"] == 0 {
						t.Fatalf("round %d: no data written to %s: %v", round, c.data, io)
					}
				}
			}
		})
	}
}

// On a metadata_csum file system, a directory block committed with a checksum that does not
// match its content (a torn write, a driver bug) is an anomaly naming the block, and its
// entries are not taken as a change: the name the corrupt block seems to add is not reported.
// The same change committed intact is a mkdir.
func TestJournaledBadChecksum(t *testing.T) {
	ext3fstest.Need(t)
	base := ext3fstest.SeedImage(t, "ext4")
	after := ext3fstest.DebugfsChange(t, base, "mkdir /e/sub\n")
	fs, err := ext3fs.Open(bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	var eBlk uint64
	_ = fs.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		if p == "/e" {
			_ = fs.WalkBlocks(in, func(r ext3fs.BlockRef) error {
				if r.Kind == ext3fs.BlockData && r.Logical == 0 {
					eBlk = r.Phys
				}
				return nil
			})
		}
		return nil
	})
	if eBlk == 0 {
		t.Fatal("no first block of /e")
	}
	bs := uint64(fs.BlockSize())
	corrupt := bytes.Clone(after)
	blk := corrupt[eBlk*bs : (eBlk+1)*bs]
	i := bytes.Index(blk, []byte("sub"))
	if i < 0 {
		t.Fatal("the new entry is not in /e's first block")
	}
	blk[i] = 'x' // the entry now reads "xub"; the checksum is the one of "sub"
	for _, c := range []struct {
		name    string
		img     []byte
		wantNS  []string
		wantBad bool
	}{{"intact", after, []string{"mkdir /e/sub"}, false}, {"corrupt", corrupt, nil, true}} {
		t.Run(c.name, func(t *testing.T) {
			_, journal, _ := journalize(t, base, c.img)
			got := analyzeRecords(t, base, journal, Options{})
			ns, _, an := meaning(got)
			bad := 0
			for _, a := range an {
				if strings.Contains(a, "checksum") && strings.Contains(a, fmt.Sprintf("block %d", eBlk)) {
					bad++
				}
			}
			if c.wantBad && (bad != 1 || len(an) != 1) {
				t.Fatalf("anomalies %q, want one about the checksum of block %d", an, eBlk)
			}
			if !c.wantBad && len(an) > 0 {
				t.Fatalf("anomalies %q on an intact transaction", an)
			}
			for _, n := range ns {
				if strings.Contains(n, "xub") {
					t.Fatalf("the corrupt block's name was reported: %q", ns)
				}
			}
			if c.wantNS != nil && !equalStrings(ns, c.wantNS) {
				t.Fatalf("namespace ops %q, want %q", ns, c.wantNS)
			}
		})
	}
}
