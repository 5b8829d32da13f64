package analysis

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// emitted runs a scenario's NBD log and returns, for each op, the index of the record being
// processed when it came out.
func emitted(t *testing.T, scenario string, split bool) ([]ops.Op, []int64) {
	t.Helper()
	img := openImage(t, scenario)
	var cur int64 = -1
	var out []ops.Op
	var at []int64
	_, err := Run(Input{Image: img, ImageSize: img.Size(), Log: openLog(t, filepath.Join(fixtures, scenario, "io.log.zst"))},
		Options{SplitAtFlush: split, Tap: func(r *blklog.Record) { cur = r.Index }},
		func(op *ops.Op) error { out = append(out, *op); at = append(at, cur); return nil })
	must(t, err)
	return out, at
}

// SplitAtFlush lets every line out by the next device flush instead of holding it behind an open
// run (a directory's I/O run stays open until that directory's next I/O): on a real capture the
// namespace ops come out no later, most of them earlier, and the ops are the same but for runs
// cut at flushes (bytes per file and kind unchanged).
func TestSplitAtFlush(t *testing.T) {
	for _, sc := range []string{"basic-ext3-4k", "random-ext3-4k"} {
		t.Run(sc, func(t *testing.T) {
			plain, plainAt := emitted(t, sc, false)
			split, splitAt := emitted(t, sc, true)
			ns := func(o []ops.Op, at []int64) (keys []string, when map[string]int64) {
				when = map[string]int64{}
				for i, op := range o {
					if !op.IsIO() {
						k := fmt.Sprintf("%d %s %s %s", op.Seq, op.Op, op.Path, op.To)
						keys = append(keys, k)
						when[k] = at[i]
					}
				}
				return
			}
			pk, pw := ns(plain, plainAt)
			sk, sw := ns(split, splitAt)
			check(t, fmt.Sprint(pk) == fmt.Sprint(sk) && len(pk) > 5, "namespace ops differ: %d plain, %d split", len(pk), len(sk))
			earlier := 0
			for _, k := range pk {
				check(t, sw[k] <= pw[k], "%s: out at record %d with SplitAtFlush, %d without", k, sw[k], pw[k])
				if sw[k] < pw[k] {
					earlier++
				}
			}
			check(t, 2*earlier >= len(pk), "only %d of %d namespace ops came out earlier", earlier, len(pk))
			bytes := func(o []ops.Op) []string {
				m := map[string]int64{}
				for _, op := range o {
					if op.IsIO() {
						m[fmt.Sprintf("%s %s %s", op.Op, op.Path, op.Kind)] += op.Bytes
					}
				}
				var s []string
				for k, v := range m {
					s = append(s, fmt.Sprintf("%s %d", k, v))
				}
				sort.Strings(s)
				return s
			}
			check(t, fmt.Sprint(bytes(plain)) == fmt.Sprint(bytes(split)), "I/O bytes per file differ")
			check(t, len(split) >= len(plain), "%d lines split, %d plain", len(split), len(plain))
			t.Logf("%d lines plain, %d split; %d of %d namespace ops out earlier", len(plain), len(split), earlier, len(pk))
		})
	}
}
