//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// openPTY returns the two ends of a new pseudo-terminal: what is written to tty is read from
// master, as a terminal emulator would.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// The bar is made only for a terminal: not for a pipe, a file, /dev/null, a buffer, nor with
// --quiet.
func TestProgressOnlyOnATerminal(t *testing.T) {
	_, tty := openPTY(t)
	if newProgress(tty, false, "x", 100, true) == nil {
		t.Error("no bar on a terminal")
	}
	if newProgress(tty, true, "x", 100, true) != nil {
		t.Error("a bar with quiet set")
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, stderr := range map[string]io.Writer{"/dev/null": null, "a file": file, "a pipe": w, "a buffer": &bytes.Buffer{}} {
		if p := newProgress(stderr, false, "x", 100, true); p != nil {
			t.Errorf("a bar on %s", name)
		}
	}
	// A nil bar is a no-op.
	var p *progress
	p.SetTotal(5)
	p.Add(1)
	p.Done()
	if got := p.Reader(strings.NewReader("abc")); got == nil {
		t.Error("nil bar's Reader")
	}
}

// analyze on a terminal draws the bar (rate and time left) and clears it before the summary;
// with stderr in a file, the file holds the summary and no trace of a bar.
func TestAnalyzeProgressBar(t *testing.T) {
	needFixture(t)
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	img, lg := bigInputs(t)
	args := []string{"analyze", img, lg}

	master, tty := openPTY(t)
	got := make(chan string)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil || strings.Contains(b.String(), "anomalies:") {
				break
			}
		}
		got <- b.String()
	}()
	if code := executeArgs(args, io.Discard, tty); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var term string
	select {
	case term = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read from the terminal")
	}
	bar := strings.Index(term, "analyzing")
	clear := strings.LastIndex(term, "\033[2K\r")
	summary := strings.Index(term, "ext3replay analyze:")
	if bar < 0 || !strings.Contains(term, "%") || clear < bar || summary < clear {
		t.Errorf("terminal: want the bar, then a line clear, then the summary:\n%q", term)
	}

	// Ops printed on the terminal: no bar among them.
	master2, tty2 := openPTY(t)
	got2 := make(chan string)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master2.Read(buf)
			b.Write(buf[:n])
			if err != nil || strings.Contains(b.String(), "anomalies:") {
				break
			}
		}
		got2 <- b.String()
	}()
	if code := executeArgs(args, tty2, tty2); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	select {
	case term = <-got2:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read from the terminal")
	}
	if strings.Contains(term, "analyzing") || strings.Contains(term, "decompressing") || !strings.Contains(term, "(unowned)") {
		t.Errorf("ops on the terminal: want them without a bar:\n%q", term)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	if code := executeArgs(args, io.Discard, f); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	f.Close()
	b, _ := os.ReadFile(f.Name())
	if !bytes.Contains(b, []byte("ext3replay analyze:")) || bytes.Contains(b, []byte("analyzing")) || bytes.ContainsAny(b, "\r\033") {
		t.Errorf("stderr in a file:\n%q", b)
	}
}

// A bar is drawn only once the command has run past progressDelay: before, nothing reaches the
// terminal, not even the clearing sequence.
func TestProgressDelay(t *testing.T) {
	var out bytes.Buffer
	d := &delayedWriter{w: &out, after: time.Now().Add(time.Hour)}
	d.Write([]byte("\rbar 10%"))
	if out.Len() != 0 || d.shown.Load() {
		t.Fatalf("drawn before the delay: %q", out.String())
	}
	d.after = time.Now().Add(-time.Second)
	d.Write([]byte("\rbar 20%"))
	if out.String() != "\rbar 20%" || !d.shown.Load() {
		t.Fatalf("not drawn after the delay: %q", out.String())
	}
}

// runOnPTY runs args with stderr on a new pseudo-terminal (stdout too if both) and returns what
// the terminal received, up to the line containing until.
func runOnPTY(t *testing.T, args []string, both bool, until string) (int, string) {
	t.Helper()
	master, tty := openPTY(t)
	got := make(chan string)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil || strings.Contains(b.String(), until) {
				break
			}
		}
		got <- b.String()
	}()
	var stdout io.Writer = io.Discard
	if both {
		stdout = tty
	}
	code := executeArgs(args, stdout, tty)
	fmt.Fprint(tty, until) // ends the reader whatever the command printed
	select {
	case s := <-got:
		return code, s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read from the terminal")
	}
	return code, ""
}

// Opening a .zst image (inspect, blocks, analyze, check) shows its decompression, and inspect's
// walk its own bar; each is cleared before what follows.
func TestImageProgressBars(t *testing.T) {
	needFixture(t)
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	img, lg := bigInputs(t)
	code, term := runOnPTY(t, []string{"inspect", img}, false, "@END@")
	if code != exitOK {
		t.Fatalf("inspect: exit %d", code)
	}
	dec, walk := strings.Index(term, "decompressing big.img.zst"), strings.Index(term, "inspecting")
	if dec < 0 || walk < dec || strings.Count(term, "\033[2K\r") < 2 {
		t.Errorf("inspect on a terminal: want the decompression bar, then the walk's, each cleared:\n%q", term)
	}
	code, term = runOnPTY(t, []string{"analyze", "-o", filepath.Join(t.TempDir(), "ops"), img, lg}, false, "anomalies:")
	if code != exitOK || !strings.Contains(term, "decompressing big.img.zst") || !strings.Contains(term, "analyzing") {
		t.Errorf("analyze -o on a terminal: exit %d\n%q", code, term)
	}
}

// After Done the bar draws nothing more: a spinner (unknown total) is redrawn by a goroutine of
// the library every 100 ms until it is finished, which Exit alone did not do.
func TestProgressSilentAfterDone(t *testing.T) {
	old := progressDelay
	progressDelay = 0
	defer func() { progressDelay = old }()
	master, tty := openPTY(t)
	got := make(chan string)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil || strings.Contains(b.String(), "@END@") {
				break
			}
		}
		got <- b.String()
	}()
	p := newProgress(tty, false, "spinning", -1, true)
	for i := 0; i < 5; i++ {
		p.Add(1000)
		time.Sleep(150 * time.Millisecond)
	}
	p.Done()
	fmt.Fprint(tty, "@DONE@")
	time.Sleep(400 * time.Millisecond) // four of the spinner's ticks
	fmt.Fprint(tty, "@END@")
	term := <-got
	if !strings.Contains(term, "spinning") {
		t.Fatalf("the spinner was not drawn:\n%q", term)
	}
	if after := term[strings.Index(term, "@DONE@")+len("@DONE@"):]; after != "@END@" {
		t.Errorf("drawn after Done: %q", after)
	}
}

// bigInputs makes inputs large enough to be read in many pieces, so that a bar is drawn before
// it ends (a bar that ends at its first count is never drawn): the basic-ext3-4k image followed
// by 8 MiB of random bytes, zstd-compressed, and a log of 4 MiB of random writes to free blocks
// of it.
func bigInputs(t *testing.T) (img, log string) {
	t.Helper()
	needFixture(t)
	src, err := diskimage.Open(filepath.Join(fixtureDir, "image.raw.zst"))
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, src.Size(), src.Size()+8<<20)
	if _, err := src.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	src.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	tail := make([]byte, 8<<20)
	for i := range tail {
		tail[i] = byte(rng.Uint32())
	}
	raw = append(raw, tail...)
	dir := t.TempDir()
	img = filepath.Join(dir, "big.img.zst")
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, enc.EncodeAll(raw, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "big.log.zst")
	w, err := blklog.Create(log, blklog.Header{DiskSize: uint64(len(raw)), Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 64; i++ {
		data := tail[i*64<<10 : (i+1)*64<<10] // random: the log does not compress
		rec := blklog.Record{Type: blklog.TypeWrite, Sector: uint64(12000+16*i) * 8, Length: uint32(len(data)), Data: data,
			Flags: blklog.FlagHasTime, TimeNS: int64(i) * 1e6}
		if err := w.Write(&rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img, log
}

// A bar of unknown total (a log read from a pipe, an image's phase) starts no goroutine of its
// own: progressbar's spinner goroutine read the bar's state without its lock (a data race that
// go test -race reported), so the spinner turns as the bar is drawn instead.
func TestProgressSpinnerHasNoGoroutine(t *testing.T) {
	_, tty := openPTY(t)
	before := runtime.NumGoroutine()
	p := newProgress(tty, false, "reading", -1, true)
	if p == nil {
		t.Fatal("no bar on a terminal")
	}
	defer p.Done()
	p.Add(4096)
	time.Sleep(50 * time.Millisecond) // a goroutine started by the library would be running now
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines after making a spinner bar, %d before", after, before)
	}
}

// With a bar, the log file still reaches the log reader as a file (blklog.CountedFile: read
// ahead at offsets, raw blocks lent in place), and the bar counts what is read: all of it here,
// the log being smaller than one chunk of the read-ahead.
func TestProgressReaderKeepsTheFile(t *testing.T) {
	needFixture(t)
	_, tty := openPTY(t)
	prog := newProgress(tty, false, "analyzing", -1, true)
	if prog == nil {
		t.Fatal("no bar on a terminal")
	}
	defer prog.Done()
	path := filepath.Join(fixtureDir, "io.log.zst")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	prog.SetTotal(fi.Size())
	r := prog.Reader(f)
	if c, ok := r.(*blklog.CountedFile); !ok || c.File != f {
		t.Fatalf("the bar's reader of a file is a %T, not the file counted", r)
	}
	lr, err := blklog.NewReader(r, path)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := lr.Next(); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
	}
	lr.Close()
	if n := prog.bar.State().CurrentNum; n != fi.Size() {
		t.Errorf("the bar counted %d bytes of a %d-byte log", n, fi.Size())
	}
}
