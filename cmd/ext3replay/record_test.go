package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

var (
	recBinOnce sync.Once
	recBin     string
	recBinErr  error
)

// recorderBinary builds ext3replay once per test run.
func recorderBinary(t *testing.T) string {
	t.Helper()
	recBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ext3replay-bin")
		if err != nil {
			recBinErr = err
			return
		}
		recBin = filepath.Join(dir, "ext3replay")
		out, err := exec.Command("go", "build", "-o", recBin, ".").CombinedOutput()
		if err != nil {
			recBinErr = errors.New(string(out))
		}
	})
	if recBinErr != nil {
		t.Fatalf("building ext3replay: %v", recBinErr)
	}
	return recBin
}

type recProc struct {
	cmd    *exec.Cmd
	stderr *bufio.Reader
	lines  []string
}

// startRecord runs `ext3replay record` and waits for its ready line.
func startRecord(t *testing.T, args ...string) *recProc {
	t.Helper()
	cmd := exec.Command(recorderBinary(t), append([]string{"record"}, args...)...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &recProc{cmd: cmd, stderr: bufio.NewReader(pr)}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := p.stderr.ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v %q", err, line)
	}
	p.lines = append(p.lines, line)
	return p
}

// finish waits for exit and returns the exit code and the remaining stderr.
func (p *recProc) finish(t *testing.T) (int, string) {
	t.Helper()
	rest, _ := io.ReadAll(p.stderr)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("record did not exit")
	}
	return p.cmd.ProcessState.ExitCode(), string(rest)
}

func writeBase(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	for i := 0; i < size; i += 8192 {
		copy(b[i:], "some base content at "+string(rune('a'+i%26)))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func applyLog(t *testing.T, logPath string, base []byte) ([]byte, int, error) {
	t.Helper()
	r, err := blklog.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img := bytes.Clone(base)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return img, n, nil
		}
		if err != nil {
			return img, n, err
		}
		n++
		if rec.Type == blklog.TypeWrite {
			copy(img[rec.Sector*512:], rec.Data)
		} else if rec.Type == blklog.TypeWriteZeroes || rec.Type == blklog.TypeDiscard {
			clear(img[rec.Sector*512 : rec.Sector*512+uint64(rec.Length)])
		}
	}
}

func TestRecordCommandQemuIO(t *testing.T) {
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (apt-get install qemu-utils)")
	}
	dir := t.TempDir()
	base := writeBase(t, filepath.Join(dir, "base.img"), 4<<20)
	sock := filepath.Join(dir, "s.sock")
	p := startRecord(t, "--image", filepath.Join(dir, "base.img"), "--log", filepath.Join(dir, "io.log.zst"), "--socket", sock)
	if want := "ext3replay record: ready on unix:" + sock + "\n"; p.lines[0] != want {
		t.Fatalf("ready line %q, want %q", p.lines[0], want)
	}
	out, err := exec.Command("qemu-io", "-f", "raw", "nbd+unix:///?socket="+sock,
		"-c", "write -P 0xab 0 64k", "-c", "flush", "-c", "read -P 0xab 0 64k", "-c", "write -P 0xcd 1M 8k").CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("failed")) {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	code, rest := p.finish(t)
	if code != 0 || !strings.HasPrefix(rest, "ext3replay record: client disconnected") || strings.Count(rest, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, rest)
	}
	// The default state file sits next to the log.
	state, err := os.ReadFile(filepath.Join(dir, "io.log.state.img"))
	if err != nil {
		t.Fatal(err)
	}
	img, n, err := applyLog(t, filepath.Join(dir, "io.log.zst"), base)
	if err != nil || n < 4 {
		t.Fatalf("%d records, %v", n, err)
	}
	if !bytes.Equal(img, state) {
		t.Fatal("state file differs from base + log")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind", sock)
	}
	info, err := exec.Command(recorderBinary(t), "log", "info", filepath.Join(dir, "io.log.zst")).CombinedOutput()
	if err != nil || !bytes.Contains(info, []byte("status:      complete")) || !bytes.Contains(info, []byte("image hash:")) {
		t.Fatalf("log info: %v\n%s", err, info)
	}
}

// nbdSendGo reads the server's fixed-newstyle greeting and sends the client flags and an
// NBD_OPT_GO for the default export (no info requests).
func nbdSendGo(t *testing.T, c net.Conn) {
	t.Helper()
	g := make([]byte, 18)
	if _, err := io.ReadFull(c, g); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0, 0, 0, 3})
	opt := make([]byte, 16+6)
	binary.BigEndian.PutUint64(opt, 0x49484156454F5054)
	binary.BigEndian.PutUint32(opt[8:], 7)
	binary.BigEndian.PutUint32(opt[12:], 6)
	c.Write(opt)
}

// nbdHandshake performs a minimal fixed-newstyle NBD_OPT_GO.
func nbdHandshake(t *testing.T, c net.Conn) {
	t.Helper()
	nbdSendGo(t, c)
	be := binary.BigEndian
	for {
		h := make([]byte, 20)
		if _, err := io.ReadFull(c, h); err != nil {
			t.Fatal(err)
		}
		io.CopyN(io.Discard, c, int64(be.Uint32(h[16:])))
		if be.Uint32(h[12:]) == 1 { // ACK
			return
		}
	}
}

func nbdWrite(t *testing.T, c net.Conn, typ uint16, off uint64, data []byte) {
	t.Helper()
	be := binary.BigEndian
	h := make([]byte, 28)
	be.PutUint32(h, 0x25609513)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[16:], off)
	be.PutUint32(h[24:], uint32(len(data)))
	c.Write(append(h, data...))
	r := make([]byte, 16)
	if _, err := io.ReadFull(c, r); err != nil || be.Uint32(r[4:]) != 0 {
		t.Fatalf("reply % x, %v", r, err)
	}
}

// SIGTERM finishes the log: it is complete and holds what was acknowledged.
// SIGKILL cannot be caught: the log still reads up to the last flush.
func TestRecordSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			base := writeBase(t, filepath.Join(dir, "base.img"), 1<<20)
			sock := filepath.Join(dir, "s.sock")
			logPath := filepath.Join(dir, "io.log.zst")
			statePath := filepath.Join(dir, "run.img")
			p := startRecord(t, "--image", filepath.Join(dir, "base.img"), "--log", logPath, "--socket", sock, "--state", statePath)
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			nbdHandshake(t, c)
			nbdWrite(t, c, 1, 4096, bytes.Repeat([]byte{1}, 4096))
			nbdWrite(t, c, 3, 0, nil) // flush: durable from here
			nbdWrite(t, c, 1, 8192, bytes.Repeat([]byte{2}, 512))
			p.cmd.Process.Signal(sig)
			code, rest := p.finish(t)
			if got, _ := os.ReadFile(filepath.Join(dir, "base.img")); !bytes.Equal(got, base) {
				t.Fatal("BASE was modified")
			}
			img, n, err := applyLog(t, logPath, base)
			if sig == syscall.SIGTERM {
				if code != 0 || !strings.Contains(rest, "stopped by terminated") {
					t.Fatalf("exit %d, stderr %q", code, rest)
				}
				if err != nil || n != 3 {
					t.Fatalf("%d records, %v", n, err)
				}
				state, _ := os.ReadFile(statePath)
				if !bytes.Equal(state, img) {
					t.Fatal("state differs from base + log")
				}
				return
			}
			if !errors.Is(err, blklog.ErrTruncated) || n < 2 {
				t.Fatalf("after SIGKILL: %d records, %v; want the 2 before the flush, then ErrTruncated", n, err)
			}
			if img[4096] != 1 {
				t.Fatal("flushed write lost")
			}
		})
	}
}

func TestRecordRefusesRemoteListen(t *testing.T) {
	dir := t.TempDir()
	writeBase(t, filepath.Join(dir, "base.img"), 1<<20)
	cmd := exec.Command(recorderBinary(t), "record", "--image", filepath.Join(dir, "base.img"), "--log", filepath.Join(dir, "l.zst"), "--listen", "0.0.0.0:0")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(out, []byte("not a loopback")) {
		t.Fatalf("%v: %s", err, out)
	}
	// Loopback TCP works and reports the bound address.
	p := startRecord(t, "--image", filepath.Join(dir, "base.img"), "--log", filepath.Join(dir, "l.zst"), "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(p.lines[0], "ext3replay record: ready on tcp:127.0.0.1:") {
		t.Fatalf("ready line %q", p.lines[0])
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if code, _ := p.finish(t); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
	base, _ := os.ReadFile(filepath.Join(dir, "base.img"))
	if _, n, err := applyLog(t, filepath.Join(dir, "l.zst"), base); n != 0 || err != nil {
		t.Fatalf("%d records, %v", n, err)
	}
}

// A --log or --state that is BASE through a symlink or a hard link is
// refused before anything is written: BASE keeps every byte.
func TestRecordRefusesLinksToBase(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		link       func(old, new string) error
	}{
		{"log symlink", "--log", os.Symlink},
		{"log hard link", "--log", os.Link},
		{"state symlink", "--state", os.Symlink},
		{"state hard link", "--state", os.Link},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			basePath := filepath.Join(dir, "base.img")
			want := writeBase(t, basePath, 1<<20)
			link := filepath.Join(dir, "link")
			if err := tc.link(basePath, link); err != nil {
				t.Fatal(err)
			}
			args := []string{"record", "--image", basePath, "--socket", filepath.Join(dir, "s.sock")}
			if tc.flag == "--log" {
				args = append(args, "--log", link)
			} else {
				args = append(args, "--log", filepath.Join(dir, "l.zst"), "--state", link)
			}
			cmd := exec.Command(recorderBinary(t), args...)
			cmd.Stdin = nil
			done := make(chan struct{})
			var out []byte
			go func() { out, _ = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatal("record did not refuse (it started serving)")
			}
			if cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(out, []byte("different files")) {
				t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
			}
			got, err := os.ReadFile(basePath)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("BASE changed (%d bytes, %v)", len(got), err)
			}
		})
	}
}

// A second recorder on a live recorder's socket path used to unlink it and take over silently.
// It now refuses before touching any output (even the same --log), and the first one still
// serves: its idle check connection is dropped, not taken for the client.
func TestRecordRefusesLiveSocket(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := writeBase(t, basePath, 1<<20)
	sock, logPath := filepath.Join(dir, "s.sock"), filepath.Join(dir, "l.zst")
	p := startRecord(t, "--image", basePath, "--log", logPath, "--socket", sock)
	before, _ := os.ReadFile(logPath)
	cmd := exec.Command(recorderBinary(t), "record", "--image", basePath, "--log", logPath, "--socket", sock)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(out, []byte("in use")) {
		t.Fatalf("second recorder: exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
	if after, _ := os.ReadFile(logPath); !bytes.Equal(before, after) {
		t.Fatal("the second recorder touched the first one's log")
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("first recorder's socket gone: %v", err)
	}
	nbdHandshake(t, c)
	nbdWrite(t, c, 1, 4096, []byte(strings.Repeat("w", 512)))
	c.Close()
	if code, rest := p.finish(t); code != 0 {
		t.Fatalf("first recorder exit %d: %s", code, rest)
	}
	if _, n, err := applyLog(t, logPath, base); n != 1 || err != nil {
		t.Fatalf("%d records, %v", n, err)
	}
}

// TestRecordQcow2Base: a qcow2 BASE is served as its raw content, left untouched, and the log's
// identity is that content's, so the log is accepted against the qcow2 image as against the raw one.
func TestRecordQcow2Base(t *testing.T) {
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (apt-get install qemu-utils)")
	}
	dir := t.TempDir()
	base := writeBase(t, filepath.Join(dir, "base.img"), 4<<20)
	qcow := filepath.Join(dir, "base.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", filepath.Join(dir, "base.img"), qcow).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	before, err := os.ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	logPath := filepath.Join(dir, "io.log.zst")
	p := startRecord(t, "--image", qcow, "--log", logPath, "--socket", sock)
	out, err := exec.Command("qemu-io", "-f", "raw", "nbd+unix:///?socket="+sock,
		"-c", "read -v 3M 32", "-c", "write -P 0xab 0 64k", "-c", "flush").CombinedOutput()
	// The guest reads BASE's content through the converted copy.
	if err != nil || bytes.Contains(out, []byte("failed")) || !bytes.Contains(out, []byte("some.base.conten")) {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	if code, rest := p.finish(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, rest)
	}
	if after, _ := os.ReadFile(qcow); !bytes.Equal(before, after) {
		t.Error("the qcow2 BASE changed")
	}
	state, err := os.ReadFile(filepath.Join(dir, "io.log.state.img"))
	if err != nil {
		t.Fatal(err)
	}
	if img, _, err := applyLog(t, logPath, base); err != nil || !bytes.Equal(img, state) {
		t.Fatalf("state file differs from base + log (%v)", err)
	}
	r, err := blklog.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, err := diskimage.Open(qcow)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := blklog.CheckImage(r.Header(), img, img.Size()); err != nil || !r.Header().Image.Known {
		t.Errorf("the log against its qcow2 BASE: %v (identity known %v)", err, r.Header().Image.Known)
	}
}
