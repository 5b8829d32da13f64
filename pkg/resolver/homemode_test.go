package resolver

import (
	"bytes"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// holdsIO replays recs and reports whether the resolver ended up following the ext2 rules.
func holdsIO(t *testing.T, img []byte, recs []blklog.Record) bool {
	t.Helper()
	return replay(t, img, recs, Options{}, func(*ops.Op) error { return nil }).mode.decidedAtFlush()
}

// A real ext3/ext4 Linux guest writes metadata home only as checkpoints of committed
// transactions: the resolver must keep the journaled rules on every such log, in any completion
// order inside a flush interval; an ext2 image, and U-Boot on any image, follow the ext2 rules.
func TestHomeModeRealLogs(t *testing.T) {
	logs := realLogs(t)
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for _, logPath := range logs {
		dir := filepath.Dir(logPath)
		t.Run(filepath.Base(dir)+"/"+filepath.Base(logPath), func(t *testing.T) {
			img := readZstd(t, filepath.Join(dir, "image.raw.zst"))
			fs, err := ext3fs.OpenWith(bytes.NewReader(img), openOptions)
			if err != nil {
				t.Fatal(err)
			}
			// U-Boot's ext4 driver writes metadata home before its own journal commit (its
			// journal is an undo log): it orders nothing through the journal, and the
			// resolver must see that.
			env, err := scenario.Env(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := !fs.SB.HasJournal() || env["WRITER"] == "uboot"
			recs := readLog(t, logPath)
			if got := holdsIO(t, img, recs); got != want {
				t.Fatalf("log order: ext2 rules %v, want %v (journal %v)", got, want, fs.SB.HasJournal())
			}
			for seed := int64(1); seed <= int64(seeds); seed++ {
				if got := holdsIO(t, img, permuteIntervals(recs, rand.New(rand.NewSource(seed)))); got != want {
					t.Fatalf("seed %d: ext2 rules %v, want %v", seed, got, want)
				}
			}
		})
	}
}

// The same change on an ext3 image, written home without the journal, switches to the ext2
// rules; as a jbd2 transaction plus checkpoint it does not.
func TestHomeModeSwitch(t *testing.T) {
	seed := ext3fstest.SeedImage(t, "ext3")
	after := ext3fstest.DebugfsChange(t, seed, "write /dev/null /f\nmkdir /d\n")
	if !holdsIO(t, seed, blockWrites(seed, after)) {
		t.Error("ext3 metadata written home without the journal: still journaled rules")
	}
	data, journal, checkpoint := journalize(t, seed, after)
	log := append(append(append([]blklog.Record(nil), data...), journal...), checkpoint...)
	if holdsIO(t, seed, log) {
		t.Error("journaled change with its checkpoint: switched to the ext2 rules")
	}
	// Home writes first (a journal replayed at mount writes its blocks home), then the
	// guest's own transaction: the journaled rules again.
	later := ext3fstest.DebugfsChange(t, after, "write /dev/null /g\n")
	data, journal, _ = journalize(t, after, later)
	log = append(append(blockWrites(seed, after), data...), journal...)
	if holdsIO(t, seed, log) {
		t.Error("home writes then a committed transaction: still the ext2 rules")
	}
}
