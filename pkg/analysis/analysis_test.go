package analysis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

const fixtures = "../../fixtures/real"

func must(t testing.TB, err error, ctx ...any) {
	t.Helper()
	if err != nil {
		t.Fatal(append(ctx, err)...)
	}
}

func check(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func openImage(t *testing.T, scenario string) *diskimage.Image {
	t.Helper()
	img, err := diskimage.Open(filepath.Join(fixtures, scenario, "image.raw.zst"))
	must(t, err)
	t.Cleanup(func() { img.Close() })
	return img
}

func openLog(t *testing.T, path string) blklog.Reader {
	t.Helper()
	lr, err := blklog.Open(path)
	must(t, err)
	t.Cleanup(func() { lr.Close() })
	return lr
}

func run(t *testing.T, img *diskimage.Image, logPath string) ([]ops.Op, *Result, error) {
	t.Helper()
	var out []ops.Op
	res, err := Run(Input{Image: img, ImageSize: img.Size(), ImageName: "image", Log: openLog(t, logPath), LogName: logPath},
		Options{}, func(op *ops.Op) error { out = append(out, *op); return nil })
	return out, res, err
}

// expectedNamespace reads the namespace ops of a scenario's ground truth (printed by the guest).
func expectedNamespace(t *testing.T, scenario string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtures, scenario, "expected.jsonl"))
	must(t, err)
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct{ Op, Path, To string }
		must(t, json.Unmarshal(sc.Bytes(), &e))
		if e.Op != "read" && e.Op != "write" {
			want = append(want, e.Op+" "+e.Path+" "+e.To)
		}
	}
	check(t, len(want) > 0, "no namespace op in the ground truth")
	return want
}

// Both logs of a real capture give the guest's namespace operations, each once.
func TestRunRealCapture(t *testing.T) {
	img := openImage(t, "basic-ext3-4k")
	want := expectedNamespace(t, "basic-ext3-4k")
	for _, log := range []string{"io.log.zst", "writes.lwlog.zst"} {
		t.Run(log, func(t *testing.T) {
			out, res, err := run(t, img, filepath.Join(fixtures, "basic-ext3-4k", log))
			must(t, err)
			check(t, res.Damage == nil, "damage: %v", res.Damage)
			got := map[string]int{}
			var n int64
			for _, op := range out {
				if !op.IsIO() {
					got[string(op.Op)+" "+op.Path+" "+op.To]++
				}
				n++
			}
			for _, w := range want {
				check(t, got[w] == 1, "%s: %q reported %d times, want once", log, w, got[w])
			}
			var printed int64
			for _, c := range res.Printed {
				printed += c
			}
			check(t, n == printed, "Result.Printed counts %d ops, %d were emitted", printed, n)
			check(t, res.Anomalies == 0, "%d anomalies", res.Anomalies)
			check(t, res.Transactions > 0, "no journal transaction applied")
		})
	}
}

// A log of another file system is refused before any op: the native log by the image identity
// it records, the dm-log-writes log by the first superblock it writes.
func TestRunRefusesAnotherImage(t *testing.T) {
	other := openImage(t, "basic-ext2-4k")
	for _, log := range []string{"io.log.zst", "writes.lwlog.zst"} {
		out, _, err := run(t, other, filepath.Join(fixtures, "basic-ext3-4k", log))
		var ie *InputError
		check(t, errors.As(err, &ie), "%s: err = %v, want an InputError", log, err)
		check(t, errors.Is(err, blklog.ErrImageMismatch), "%s: err = %v, want ErrImageMismatch", log, err)
		if log == "writes.lwlog.zst" {
			check(t, strings.Contains(err.Error(), "superblock whose s_"), "%s: %v does not name the field", log, err)
		}
		check(t, len(out) == 0, "%s: %d ops before the refusal", log, len(out))
	}
}

// A truncated log is analysed up to the damage, which the result names; it is no error.
func TestRunDamagedLog(t *testing.T) {
	img := openImage(t, "basic-ext3-4k")
	full, err := os.ReadFile(filepath.Join(fixtures, "basic-ext3-4k", "io.log.zst"))
	must(t, err)
	cut := filepath.Join(t.TempDir(), "cut.log.zst")
	must(t, os.WriteFile(cut, full[:len(full)*2/3], 0o644))
	out, res, err := run(t, img, cut)
	must(t, err)
	var de *blklog.DamageError
	check(t, errors.As(res.Damage, &de), "damage = %v, want a DamageError", res.Damage)
	check(t, len(out) > 0, "no op before the damage")
}

// An error from emit stops the run and comes back unchanged, emit running on the run's
// goroutine or on its own.
func TestRunEmitError(t *testing.T) {
	img := openImage(t, "basic-ext3-4k")
	stop := errors.New("reader went away")
	for _, async := range []bool{false, true} {
		n := 0
		_, err := Run(Input{Image: img, ImageSize: img.Size(), Log: openLog(t, filepath.Join(fixtures, "basic-ext3-4k", "io.log.zst"))},
			Options{EmitAsync: async}, func(*ops.Op) error { n++; return stop })
		check(t, errors.Is(err, stop), "async %v: err = %v, want emit's", async, err)
		check(t, n == 1, "async %v: emit called %d times after its error", async, n-1)
	}
}

// Emit on a goroutine of its own gives the same ops, counts and statistics as on the run's:
// bare file systems, a partitioned disk, both log formats, with and without splitting at flushes.
func TestRunEmitAsyncSameOps(t *testing.T) {
	type cse struct {
		scenario, log string
		split         bool
	}
	cases := []cse{{"basic-ext3-4k", "writes.lwlog.zst", false}, {"htree-ext4-4k", "io.log.zst", false},
		{"random-ext4-4k", "io.log.zst", true}, {"burst-ext3-4k", "io.log.zst", false},
		{"gpt-ext4-boot-swap", "io.log.zst", false}, {"fastcommit-ext4-4k", "io.log.zst", true}}
	for _, c := range cases {
		t.Run(c.scenario+"/"+c.log, func(t *testing.T) {
			img := openImage(t, c.scenario)
			var outs [2][]ops.Op
			var results [2]*Result
			for i, async := range []bool{false, true} {
				res, err := Run(Input{Image: img, ImageSize: img.Size(), ImageName: "image", Log: openLog(t, filepath.Join(fixtures, c.scenario, c.log))},
					Options{EmitAsync: async, SplitAtFlush: c.split}, func(op *ops.Op) error { outs[i] = append(outs[i], *op); return nil })
				must(t, err)
				results[i] = res
			}
			check(t, len(outs[0]) > 0, "no ops")
			check(t, len(outs[0]) == len(outs[1]), "%d ops emitted asynchronously, %d synchronously", len(outs[1]), len(outs[0]))
			for k := range outs[0] {
				a, b := outs[0][k], outs[1][k]
				ja, _ := a.MarshalJSON()
				jb, _ := b.MarshalJSON()
				check(t, bytes.Equal(ja, jb), "op %d: %s asynchronously, %s synchronously", k, jb, ja)
			}
			check(t, fmt.Sprint(results[0].Printed) == fmt.Sprint(results[1].Printed), "printed %v asynchronously, %v synchronously", results[1].Printed, results[0].Printed)
			check(t, fmt.Sprint(results[0].Stats) == fmt.Sprint(results[1].Stats), "stats differ: %+v asynchronously, %+v synchronously", results[1].Stats, results[0].Stats)
		})
	}
}

// The guard compares only the first write that covers the superblock, and only identity
// fields: a mount's changes (mount count, times, free counts) pass.
func TestSuperblockGuard(t *testing.T) {
	img := openImage(t, "basic-ext3-4k")
	g, err := NewSuperblockGuard(blklog.Header{}, img, "log")
	must(t, err)
	sb := make([]byte, 4096)
	_, err = img.ReadAt(sb, 0)
	must(t, err)
	mounted := bytes.Clone(sb)
	mounted[1024+0x34]++ // s_mnt_count
	must(t, g.Check(&blklog.Record{Type: blklog.TypeWrite, Sector: 0, Length: 4096, Data: mounted}))

	g, _ = NewSuperblockGuard(blklog.Header{}, img, "log")
	other := bytes.Clone(sb)
	other[1024+0x68] ^= 0xff // s_uuid
	must(t, g.Check(&blklog.Record{Type: blklog.TypeWrite, Sector: 8, Length: 4096, Data: other}), "not the superblock's sectors")
	err = g.Check(&blklog.Record{Index: 7, Type: blklog.TypeWrite, Sector: 0, Length: 4096, Data: other})
	check(t, errors.Is(err, blklog.ErrImageMismatch) && strings.Contains(err.Error(), "record 7"), "err = %v", err)
	must(t, g.Check(&blklog.Record{Type: blklog.TypeWrite, Sector: 0, Length: 4096, Data: other}), "only the first superblock write is compared")

	g, _ = NewSuperblockGuard(blklog.Header{Image: blklog.ImageID{Known: true}}, img, "log")
	check(t, g == nil, "native logs are checked by their recorded identity, not by a guard")
}

// With a way to read the log again (Input.Reopen, as analyze gives for a log file), the log
// reader leaves plain file data out of large writes: the ops are the same as with whole
// payloads, and so are the statistics but for the counts of what was left out. A partitioned
// disk, and a run with a Tap that reads whole payloads, read them whole.
func TestRunLeavesPlainDataOut(t *testing.T) {
	type cse struct {
		scenario, log  string
		tap, readsKept bool
		leftOut        bool
	}
	cases := []cse{{"bigfile-ext3-4k", "io.log.zst", false, false, true}, {"bigfile-ext3-4k", "writes.lwlog.zst", false, false, true},
		{"bigfile-ext3-4k", "io.log.zst", true, false, false}, {"bigfile-ext3-4k", "io.log.zst", true, true, true},
		{"gpt-ext4-boot-swap", "io.log.zst", false, false, false}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s/tap=%v,%v", c.scenario, c.log, c.tap, c.readsKept), func(t *testing.T) {
			img := openImage(t, c.scenario)
			path := filepath.Join(fixtures, c.scenario, c.log)
			var outs [2][]string
			var stats [2]resolver.Stats
			for i, again := range []bool{false, true} {
				in := Input{Image: img, ImageSize: img.Size(), ImageName: "image", Log: blklog.ReadAhead(openLog(t, path)), LogName: path}
				if again {
					in.Reopen = func() (blklog.Reader, error) { return blklog.Open(path) }
				}
				opt := Options{TapReadsKept: c.readsKept}
				if c.tap {
					opt.Tap = func(*blklog.Record) {}
				}
				res, err := Run(in, opt, func(op *ops.Op) error { outs[i] = append(outs[i], op.String()); return nil })
				must(t, err)
				stats[i] = res.Stats
			}
			check(t, len(outs[0]) > 0, "no ops")
			check(t, slices.Equal(outs[0], outs[1]), "the ops differ with payloads left out")
			check(t, stats[0].LeftOut == 0, "%d blocks left out without a way to read the log again", stats[0].LeftOut)
			check(t, (stats[1].LeftOut > 0) == c.leftOut, "%d blocks left out", stats[1].LeftOut)
			stats[1].LeftOut, stats[1].ReadAgain = 0, 0
			check(t, fmt.Sprint(stats[0]) == fmt.Sprint(stats[1]), "stats differ: %+v with payloads left out, %+v without", stats[1], stats[0])
		})
	}
}
