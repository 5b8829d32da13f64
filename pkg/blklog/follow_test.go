package blklog

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// growFile writes b to path in pieces of random size (cut anywhere: inside zstd frames, inside
// records), pausing between them, as a writer that is slower than the reader does.
func growFile(t *testing.T, path string, b []byte, seed uint64, done chan<- error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		done <- err
		return
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(seed, 2))
	for off := 0; off < len(b); {
		n := min(len(b)-off, 1+rng.IntN(48<<10))
		if _, err := f.Write(b[off : off+n]); err != nil {
			done <- err
			return
		}
		off += n
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
	done <- nil
}

func emptyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "growing.log")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Following a native log written in arbitrary pieces returns exactly the records of the finished
// log, and ends at its end record: a frame or record cut off at the end is waited for, not
// reported as damage.
func TestFollowNativeGrowing(t *testing.T) {
	recs := sampleRecords(1200, 7)
	b := writeLog(t, recs, 40)
	_, want, err := readAll(t, b)
	if err != nil {
		t.Fatal(err)
	}
	path := emptyFile(t)
	done := make(chan error, 1)
	go growFile(t, path, b, 1, done)
	start := time.Now()
	r, err := OpenFollow(path, FollowOptions{Idle: 30 * time.Second, Poll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, got, err := drain(r, nil)
	if err != nil {
		t.Fatalf("after %d records: %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		sameRecord(t, i, got[i], want[i])
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("took %v: ended by --idle, not by the end record", el)
	}
}

// What the writer has synced is read while it is still writing: the follower returns the first
// batch before the second is written.
func TestFollowNativeLive(t *testing.T) {
	recs := sampleRecords(300, 3)
	path := filepath.Join(t.TempDir(), "live.log")
	w, err := Create(path, Header{DiskSize: 1 << 30, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs[:100] {
		if err := w.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFollow(path, FollowOptions{Idle: 30 * time.Second, Poll: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seen := make(chan int, len(recs))
	res := make(chan error, 1)
	go func() {
		_, got, err := drain(r, func(n int, _ *Record) { seen <- n + 1 })
		if err == nil && len(got) != len(recs) {
			err = errors.New("wrong record count")
		}
		for i := range got {
			if got[i].Sector != recs[i].Sector || got[i].Type != recs[i].Type {
				err = errors.New("records differ")
			}
		}
		res <- err
	}()
	deadline := time.After(10 * time.Second)
	for n := 0; n < 100; {
		select {
		case n = <-seen:
		case <-deadline:
			t.Fatalf("the follower saw %d of the 100 synced records while the writer was still open", n)
		}
	}
	for i := range recs[100:] {
		if err := w.Write(&recs[100+i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follow did not end at the end record")
	}
}

// A log that stops growing without its end record is damaged only once --idle has passed, and
// then exactly as an offline read of the same file reports it; closing Stop ends it likewise.
func TestFollowIdleAndStop(t *testing.T) {
	b := writeLog(t, sampleRecords(400, 5), 30)
	cut := b[:len(b)-len(b)/3] // mid-frame
	path := filepath.Join(t.TempDir(), "cut.log")
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	off, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, want, wantErr := drain(off, nil)
	off.Close()
	var wde *DamageError
	if !errors.As(wantErr, &wde) {
		t.Fatalf("offline read of the cut log: %v", wantErr)
	}
	for _, tc := range []struct {
		name string
		opt  func() FollowOptions
	}{
		{"idle", func() FollowOptions { return FollowOptions{Idle: 300 * time.Millisecond, Poll: 5 * time.Millisecond} }},
		{"stop", func() FollowOptions {
			stop := make(chan struct{})
			time.AfterFunc(300*time.Millisecond, func() { close(stop) })
			return FollowOptions{Stop: stop, Poll: 5 * time.Millisecond}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r, err := OpenFollow(path, tc.opt())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, got, err := drain(r, nil)
			if el := time.Since(start); el < 250*time.Millisecond || el > 10*time.Second {
				t.Errorf("ended after %v", el)
			}
			var de *DamageError
			if !errors.As(err, &de) || de.Record != wde.Record || err.Error() != wantErr.Error() || len(got) != len(want) {
				t.Fatalf("follow: %d records then %v; offline: %d records then %v", len(got), err, len(want), wantErr)
			}
		})
	}
}

// QEMU's blklogwrites may write a later entry before an earlier one (concurrent requests): the
// follower waits at the hole instead of taking the zeroes for the end of the log, and reads the
// super block's count again at the end, as an offline read does.
func TestFollowDMLogOutOfOrder(t *testing.T) {
	recs := dmRecords()
	b := writeDMLog(t, recs)
	want, err := readDM(t, b)
	if err != nil {
		t.Fatal(err)
	}
	// Entry offsets: a header sector, then the payload of writes.
	var offs []int
	off := SectorSize
	for _, r := range recs {
		offs = append(offs, off)
		off += SectorSize
		if r.Type == TypeWrite {
			off += int(r.Length)
		}
	}
	k := len(offs) / 2
	hole0, hole1 := offs[k], offs[k+1]
	path := emptyFile(t)
	first := append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(first[16:], 0) // QEMU starts with a count of 0
	clear(first[hole0:hole1])
	if err := os.WriteFile(path, first[:offs[k-3]], 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		f.WriteAt(first[offs[k-3]:], int64(offs[k-3])) // everything, entry k a hole
		time.Sleep(300 * time.Millisecond)
		f.WriteAt(b[hole0:hole1], int64(hole0)) // entry k lands last
		f.WriteAt(b[:SectorSize], 0)            // and the count
	}()
	r, err := OpenFollow(path, FollowOptions{Idle: time.Second, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []Record
	for {
		rec, err := r.Next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			break
		}
		rec.Data = nil
		got = append(got, rec)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		sameRecord(t, i, got[i], want[i])
	}
}
