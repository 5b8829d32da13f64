package blklog

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Following a log another process is still writing (ext3replay record, QEMU's blklogwrites):
// the reader waits at the end of the file for more instead of stopping. A record or zstd frame
// cut off at the end is not damage yet, only unfinished: it is waited for. The follow ends at
// the log's end record (native logs), when Stop is closed (SIGINT), or after Idle without
// growth; then whatever is left is judged as a plain Open would judge the file as it is, so
// the records and the damage reported are those of an offline read of the same bytes.

// DefaultFollowPoll is how often a follower looks for growth when it has caught up.
const DefaultFollowPoll = 50 * time.Millisecond

// FollowOptions say when a follow ends and how it waits.
type FollowOptions struct {
	// Idle ends the follow after the file has not grown for this long; 0: never.
	Idle time.Duration
	// Stop, when closed, ends the follow at once (the records already in the file are read).
	Stop <-chan struct{}
	// Poll is the interval between looks at the file; 0: DefaultFollowPoll.
	Poll time.Duration
	// OnWait, if set, is called (on the goroutine calling Next) each time the reader has caught
	// up and is about to wait: the moment to flush output.
	OnWait func()
}

// follower is the waiting shared by both kinds of follow: it ends at Stop or after Idle.
type follower struct {
	opt      FollowOptions
	f        *os.File
	lastGrow time.Time
	lastSize int64
	mu       sync.Mutex
	final    bool // no more waiting: the file is read as it is
}

func newFollower(f *os.File, opt FollowOptions) *follower {
	if opt.Poll <= 0 {
		opt.Poll = DefaultFollowPoll
	}
	return &follower{opt: opt, f: f, lastGrow: time.Now()}
}

// finish stops all further waiting.
func (w *follower) finish() {
	w.mu.Lock()
	w.final = true
	w.mu.Unlock()
}

func (w *follower) isFinal() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.final
}

// wait sleeps one poll interval, unless the follow has ended (then it returns false and
// everything after reads the file as it is).
func (w *follower) wait() bool {
	if w.isFinal() {
		return false
	}
	if st, err := w.f.Stat(); err == nil && st.Size() != w.lastSize {
		w.lastSize, w.lastGrow = st.Size(), time.Now()
	}
	if w.opt.Idle > 0 && time.Since(w.lastGrow) >= w.opt.Idle {
		w.finish()
		return false
	}
	if w.opt.OnWait != nil {
		w.opt.OnWait()
	}
	t := time.NewTimer(w.opt.Poll)
	defer t.Stop()
	select {
	case <-w.opt.Stop:
		w.finish()
		return false
	case <-t.C:
		return true
	}
}

// tail is a byte stream over a growing file: at the end of the file it waits for more rather
// than returning io.EOF, until the follow ends.
type tail struct{ *follower }

func (t tail) Read(p []byte) (int, error) {
	for {
		n, err := t.f.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		if !t.wait() {
			// Read once more: what was written before the end counts.
			return t.f.Read(p)
		}
	}
}

// OpenFollow opens the log at path, which another process may still be writing, and returns a
// Reader that waits for records at its end (see FollowOptions for when it stops waiting). A
// native log (zstd or raw) and a zstd dm-log-writes log are followed as a byte stream; a raw
// dm-log-writes log, which QEMU may fill out of order (concurrent requests), entry by entry:
// an entry is taken once its header sector is written (not zero) and the file holds its data.
func OpenFollow(path string, opt FollowOptions) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("blklog: %w", err)
	}
	w := newFollower(f, opt)
	// Wait for the first 8 bytes: enough to tell the formats apart.
	var head [8]byte
	for {
		n, err := f.ReadAt(head[:], 0)
		if n == len(head) {
			break
		}
		if err != nil && err != io.EOF {
			f.Close()
			return nil, fmt.Errorf("blklog: %w", err)
		}
		if !w.wait() {
			f.Close()
			return nil, &DamageError{Path: path, Err: fmt.Errorf("too short to hold a log header: %w (%d bytes when the follow ended)", io.ErrUnexpectedEOF, n)}
		}
	}
	var r Reader
	if Detect(head[:]) == FormatDMLogWrites {
		r, err = newDMFollow(f, path, w)
	} else {
		r, err = newReader(tail{w}, path, w)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileReader{Reader: r, f: f}, nil
}

// dmFollow reads a raw dm-log-writes log entry by entry as it grows.
type dmFollow struct {
	*dmLogReader
	w   *follower
	cur *io.SectionReader
}

func newDMFollow(f *os.File, name string, w *follower) (*dmFollow, error) {
	cur := io.NewSectionReader(f, 0, 1<<62)
	// The super block: its sector size says how much to wait for.
	var sb [28]byte
	for {
		n, err := f.ReadAt(sb[:], 0)
		if n == len(sb) {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("blklog: %w", err)
		}
		if !w.wait() {
			break // newDMLogReader reports the short super block
		}
	}
	if ss := int64(binary.LittleEndian.Uint32(sb[24:])); ss >= 512 && ss <= 65536 {
		w.waitFor(ss)
	}
	dr, err := newDMLogReader(cur, name)
	if err != nil {
		return nil, err
	}
	d := &dmFollow{dmLogReader: dr, w: w, cur: cur}
	dr.beforeEntry = d.waitEntry
	return d, nil
}

// waitFor waits until the file holds n bytes or the follow ends.
func (w *follower) waitFor(n int64) {
	for {
		if st, err := w.f.Stat(); err != nil || st.Size() >= n {
			return
		}
		if !w.wait() {
			return
		}
	}
}

// waitEntry waits until the entry at dr.off is whole in the file: its header sector written
// (not all zeroes: QEMU may write a later entry first, leaving a hole) and its data present.
// When the follow ends it reads the super block's entry count again (QEMU updates it as it
// goes), so that the end is judged as a plain read of the file would judge it.
func (d *dmFollow) waitEntry() {
	sec := make([]byte, d.ss)
	for {
		if n, _ := d.w.f.ReadAt(sec, d.off); int64(n) == d.ss {
			le := binary.LittleEndian
			nr, flags := le.Uint64(sec[8:]), le.Uint64(sec[16:])
			if le.Uint64(sec[0:]) != 0 || nr != 0 || flags != 0 || le.Uint64(sec[24:]) != 0 {
				var data int64
				if flags&(DMLogMark|DMLogDiscard) == 0 && nr <= MaxRecordData/uint64(d.ss) {
					data = int64(nr) * d.ss
				}
				if st, err := d.w.f.Stat(); err == nil && st.Size() >= d.off+d.ss+data {
					return
				}
			}
		}
		if !d.w.wait() {
			var sb [24]byte
			if n, _ := d.w.f.ReadAt(sb[:], 0); n == len(sb) {
				d.nrEntries = binary.LittleEndian.Uint64(sb[16:])
			}
			return
		}
	}
}
