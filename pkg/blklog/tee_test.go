package blklog

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// teeRun records recs through a Tee into a log file (a flush every 25 records) and reads its
// Live reader on another goroutine, which starts only once gate is closed. finishErr, when not
// nil, ends the log as a failed session does. It returns the live records and end, and the
// file's records and end as an offline read gives them. openAt > 0 opens the gate after that
// many records, the rest written slowly: the reader then catches up while the log grows.
func teeRun(t *testing.T, recs []Record, maxRecords int, gate chan struct{}, openAt int, finishErr error) (live, file []Record, behind int, liveErr, fileErr error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "io.log.zst")
	h := Header{DiskSize: 1 << 30, Source: "tee test", StartUnixNS: 42}
	lw, err := Create(path, h)
	if err != nil {
		t.Fatal(err)
	}
	tee := NewTee(lw, path, h, maxRecords, 0)
	tee.OnBehind = func(int64) { behind++ }
	type result struct {
		recs []Record
		err  error
	}
	res := make(chan result, 1)
	r := tee.Live(FollowOptions{Poll: 2 * time.Millisecond})
	go func() {
		<-gate
		defer r.Close()
		if r.Header().StartUnixNS != 42 || r.Header().Format != FormatNative {
			res <- result{err: errors.New("live header differs")}
			return
		}
		_, got, err := drain(r, nil)
		res <- result{got, err}
	}()
	open := func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}
	for i := range recs {
		if openAt > 0 && i >= openAt {
			if i == openAt {
				open()
			}
			time.Sleep(200 * time.Microsecond)
		}
		if err := tee.Write(&recs[i]); err != nil {
			t.Fatal(err)
		}
		if i%25 == 24 {
			if err := tee.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if finishErr != nil {
		open() // the failure is written while the reader is busy
		time.Sleep(20 * time.Millisecond)
	}
	if err := FinishLog(lw, finishErr); err != nil {
		t.Fatal(err)
	}
	tee.Finish(finishErr == nil)
	open()
	var got result
	select {
	case got = <-res:
	case <-time.After(20 * time.Second):
		t.Fatal("the live reader did not end")
	}
	off, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	_, file, fileErr = drain(off, nil)
	return got.recs, file, behind, got.err, fileErr
}

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d live records, the file holds %d", len(got), len(want))
	}
	for i := range want {
		sameRecord(t, i, got[i], want[i])
	}
}

// The live reader returns exactly the records of the log; when it falls behind (its queue of 8
// overflows while it is not reading at all), the writer goes on without waiting, says so once,
// and the reader catches up from the file.
func TestTeeLive(t *testing.T) {
	recs := sampleRecords(400, 11)
	for _, tc := range []struct {
		name       string
		maxRecords int
		gated      bool
		openAt     int
		behind     int
	}{
		{"keeps up", 1 << 12, false, 0, 0},
		{"falls behind", 8, true, 0, 1},
		{"catches up while recording", 8, true, 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gate chan struct{}
			if tc.gated {
				gate = make(chan struct{}) // every Write returns while the reader is stopped
			} else {
				gate = make(chan struct{})
				close(gate)
			}
			live, file, behind, liveErr, fileErr := teeRun(t, recs, tc.maxRecords, gate, tc.openAt, nil)
			if liveErr != nil || fileErr != nil {
				t.Fatalf("live end %v, file end %v", liveErr, fileErr)
			}
			if behind != tc.behind {
				t.Fatalf("OnBehind called %d times, want %d", behind, tc.behind)
			}
			sameRecords(t, live, file)
			if len(file) != len(recs) {
				t.Fatalf("file holds %d records", len(file))
			}
		})
	}
}

// A session that failed leaves a log with a mark and no end record: the live reader ends the same
// way as a reader of the file, with the mark and then the same damage.
func TestTeeFailedLog(t *testing.T) {
	gate := make(chan struct{})
	live, file, _, liveErr, fileErr := teeRun(t, sampleRecords(100, 12), 1<<12, gate, 0, errors.New("disk full"))
	var de *DamageError
	if !errors.As(fileErr, &de) || liveErr == nil || liveErr.Error() != fileErr.Error() {
		t.Fatalf("live end %v, file end %v", liveErr, fileErr)
	}
	sameRecords(t, live, file)
	if last := file[len(file)-1]; last.Type != TypeMark {
		t.Fatalf("last record %v, want the failure mark", last.Type)
	}
}
