package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// An existing log is the record of an earlier run: record used to truncate it silently. It is
// refused (usage error, file untouched) unless --force.
func TestRecordRefusesExistingLog(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	writeBase(t, basePath, 1<<20)
	logPath := filepath.Join(dir, "io.log.zst")
	old := []byte("an earlier run's log")
	if err := os.WriteFile(logPath, old, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(recorderBinary(t), "record", "--image", basePath, "-o", logPath, "--socket", filepath.Join(dir, "s.sock"))
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(out, []byte("exists")) || !bytes.Contains(out, []byte("--force")) {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
	if got, _ := os.ReadFile(logPath); !bytes.Equal(got, old) {
		t.Fatal("the existing log was modified")
	}
	if _, err := os.Stat(filepath.Join(dir, "io.log.state.img")); !os.IsNotExist(err) {
		t.Fatalf("a state file was made before the refusal: %v", err)
	}
	// --force overwrites it with a fresh, complete log.
	p := startRecord(t, "--image", basePath, "-o", logPath, "--socket", filepath.Join(dir, "s.sock"), "--force")
	p.cmd.Process.Signal(syscall.SIGINT)
	if code, rest := p.finish(t); code != 0 {
		t.Fatalf("exit %d: %s", code, rest)
	}
	r, err := blklog.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("forced log: %v, want a complete empty log", err)
	}
}

// nbdGoOption sends NBD_OPT_GO on a fresh connection and returns the reply type and message of
// the first reply: what QEMU sees of a busy recorder.
func nbdGoOption(t *testing.T, c net.Conn) (uint32, string) {
	t.Helper()
	nbdSendGo(t, c)
	be := binary.BigEndian
	h := make([]byte, 20)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, be.Uint32(h[16:]))
	io.ReadFull(c, msg)
	return be.Uint32(h[12:]), string(msg)
}

func nbdDisconnect(c net.Conn) {
	h := make([]byte, 28)
	binary.BigEndian.PutUint32(h, 0x25609513)
	binary.BigEndian.PutUint16(h[6:], 2)
	c.Write(h)
	c.Close()
}

// --persistent serves one client after another into one log and one state file: a probe that
// negotiates and leaves, a client that writes, a concurrent one told busy by name, then a
// further client that continues the same disk; SIGTERM ends it with a complete log.
func TestRecordPersistent(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := writeBase(t, basePath, 1<<20)
	sock, logPath, statePath := filepath.Join(dir, "s.sock"), filepath.Join(dir, "io.log.zst"), filepath.Join(dir, "run.img")
	p := startRecord(t, "--image", basePath, "-o", logPath, "--state", statePath, "--socket", sock, "--persistent")

	probe := func() {
		if _, err := exec.LookPath("qemu-img"); err == nil {
			// What a user runs before QEMU and what used the session up.
			out, err := exec.Command("qemu-img", "info", "nbd+unix:///?socket="+sock).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("1 MiB")) {
				t.Fatalf("qemu-img info: %v\n%s", err, out)
			}
			return
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		nbdHandshake(t, c)
		nbdDisconnect(c)
	}
	probe()

	c1, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("after the probe: %v", err)
	}
	nbdHandshake(t, c1)
	nbdWrite(t, c1, 1, 4096, bytes.Repeat([]byte{1}, 4096))

	// A second client while the first is in transmission: refused, saying why.
	c2, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	typ, msg := nbdGoOption(t, c2)
	if typ != 1<<31|2 || !strings.Contains(msg, "busy") || !strings.Contains(msg, "serving another") {
		t.Fatalf("concurrent client got reply %#x %q, want NBD_REP_ERR_POLICY saying busy", typ, msg)
	}
	c2.Close()
	nbdWrite(t, c1, 3, 0, nil) // the first client is undisturbed
	nbdDisconnect(c1)

	c3, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("third client: %v", err)
	}
	nbdHandshake(t, c3)
	nbdWrite(t, c3, 1, 8192, bytes.Repeat([]byte{3}, 512))
	nbdDisconnect(c3)

	// Still serving after three clients (the probe is one): it ends on a signal only.
	c4, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("recorder gone after the third client: %v", err)
	}
	nbdHandshake(t, c4)
	p.cmd.Process.Signal(syscall.SIGTERM)
	code, rest := p.finish(t)
	c4.Close()
	if code != 0 || !strings.Contains(rest, "stopped by terminated (4 clients served)") ||
		strings.Count(rest, "disconnected after") != 3 || !strings.Contains(rest, "refused a second connection") {
		t.Fatalf("exit %d, stderr %q", code, rest)
	}
	img, n, err := applyLog(t, logPath, base)
	if err != nil || n < 3 {
		t.Fatalf("%d records, %v", n, err)
	}
	if img[4096] != 1 || img[8192] != 3 {
		t.Fatal("the log lacks a client's writes")
	}
	if state, _ := os.ReadFile(statePath); !bytes.Equal(state, img) {
		t.Fatal("state differs from base + log")
	}
}
