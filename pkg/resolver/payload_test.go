package resolver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// replayLog replays the log at path on img and returns its ops as text lines and the
// stats. filter, when not nil, makes the filter the reader gets (from the resolver, as
// analysis does), with records read again from the same file.
func replayLog(t *testing.T, img []byte, path string, filter func(*Resolver, func(int64) (blklog.Record, error)) blklog.PayloadFilter) ([]string, Stats) {
	t.Helper()
	var lines []string
	r, err := New(bytes.NewReader(img), int64(len(img)), Options{Metadata: true}, func(op *ops.Op) error {
		lines = append(lines, op.String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lr, err := blklog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	lr = blklog.ReadAhead(lr)
	defer lr.Close()
	if filter != nil {
		again := blklog.NewPayloadSource(func() (blklog.Reader, error) { return blklog.Open(path) })
		defer again.Close()
		if !blklog.SetPayloadFilter(lr, filter(r, again.Record)) {
			t.Fatalf("%s: the reader refused the filter", path)
		}
	}
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := r.Record(&rec); err != nil {
			t.Fatalf("%s: record %d: %v", path, rec.Index, err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return lines, r.Stats()
}

// TestPayloadFilterFixtures holds the payload filter to its promise on both logs of every real
// fixture, the recorder's and dm-log-writes': the same ops (metadata I/O included) as with whole payloads. Every write of a
// block or more is filtered, not only the large ones, and a second pass keeps nothing by
// position, so that the journal's and the inode tables' blocks are left out too and must be
// read again: that path gives the same ops as well.
func TestPayloadFilterFixtures(t *testing.T) {
	var omitted int64
	again := map[string]int64{}
	for _, lp := range realLogs(t) {
		img := readZstd(t, filepath.Join(filepath.Dir(lp), "image.raw.zst"))
		name := filepath.Join(filepath.Base(filepath.Dir(lp)), filepath.Base(lp))
		whole, _ := replayLog(t, img, lp, nil)
		for _, pass := range []struct {
			name string
			keep func(*Resolver) blockRuns
		}{
			{"kept by position", func(r *Resolver) blockRuns { return keptRuns(r.blocks.idx) }},
			{"nothing kept by position", func(*Resolver) blockRuns { return nil }},
		} {
			var filter blklog.PayloadFilter
			got, st := replayLog(t, img, lp, func(r *Resolver, refetch func(int64) (blklog.Record, error)) blklog.PayloadFilter {
				filter = r.payloadFilter(refetch, pass.keep(r))
				filter.Min = filter.Unit
				skip := filter.Skip
				filter.Skip = func(off uint64, p []byte) bool {
					s := skip(off, p)
					if s {
						omitted++ // the decoding goroutine's only, read after Close
					}
					return s
				}
				return filter
			})
			if !slices.Equal(whole, got) {
				t.Errorf("%s, %s: the ops differ from those of whole payloads", name, pass.name)
			}
			again[pass.name] += st.ReadAgain
		}
	}
	t.Logf("%d blocks left out; writes read again: %v", omitted, again)
	if omitted == 0 || again["nothing kept by position"] == 0 {
		t.Error("the filter left nothing out, or nothing was read again: the test proves nothing")
	}
}

// TestPlainDataIsForgotten: what the filter leaves out is exactly what a free or data block's
// write forgets (putUnowned, applyBatch), and the filter keeps blocks it must keep by position.
func TestPlainDataIsForgotten(t *testing.T) {
	const blocks = 1 << 20
	m := newModel(bytes.NewReader(nil), 0, 4096, blocks, true, 1<<20)
	dir := make([]byte, 4096)
	dir[4], dir[5] = 0x00, 0x10 // one entry spanning the block, inode 0: a valid empty block
	ind := make([]byte, 4096)
	ind[0] = 7
	ext := make([]byte, 4096)
	ext[0], ext[1] = 0x0A, 0xF3
	text := bytes.Repeat([]byte("bulk data\n"), 410)[:4096]
	for _, c := range []struct {
		name  string
		b     []byte
		plain bool
	}{
		{"zeros", make([]byte, 4096), false},
		{"directory block", dir, false},
		{"indirect block", ind, false},
		{"extent node", ext, false},
		{"text", text, true},
	} {
		if got := PlainData(c.b, blocks, true); got != c.plain {
			t.Errorf("%s: plainData %v, want %v", c.name, got, c.plain)
		}
		if got := sparseOrMeta(m, c.b); got == c.plain {
			t.Errorf("%s: kept by a write to a free block: %v, and plain data: %v", c.name, got, c.plain)
		}
	}
	rs := blockRuns{{10, 20}, {30, 31}}
	for b, want := range map[uint64]bool{9: false, 10: true, 19: true, 20: false, 30: true, 31: false} {
		if rs.has(b) != want {
			t.Errorf("block %d: has %v, want %v", b, !want, want)
		}
	}
}

// sparseOrMeta is what putUnowned keeps (or marks zeroed) rather than forgets.
func sparseOrMeta(m *model, b []byte) bool {
	return bytes.Equal(b, make([]byte, len(b))) || m.couldBeMetadata(b)
}

// A write that must be read again and cannot be stops the run with an error naming its record,
// rather than replaying what was left out.
func TestPayloadFilterReadAgainFails(t *testing.T) {
	lp := "../../fixtures/real/basic-ext3-4k/io.log.zst"
	img := readZstd(t, filepath.Join(filepath.Dir(lp), "image.raw.zst"))
	r, err := New(bytes.NewReader(img), int64(len(img)), Options{}, func(*ops.Op) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	lr, err := blklog.Open(lp)
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	f := r.payloadFilter(func(int64) (blklog.Record, error) { return blklog.Record{}, errors.New("the log is gone") }, nil)
	f.Min = f.Unit
	if !blklog.SetPayloadFilter(lr, f) {
		t.Fatal("the reader refused the filter")
	}
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("the log ended without a write read again")
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Record(&rec); err != nil {
			want := fmt.Sprintf("record %d: the log is gone", rec.Index)
			t.Log(err)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q, want it to say %q", err, want)
			}
			return
		}
	}
}
