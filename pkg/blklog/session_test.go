package blklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// goClient negotiates with NBD_OPT_GO on conn and returns the client, ready for requests.
func goClient(t *testing.T, conn net.Conn) *nbdClient {
	t.Helper()
	c := &nbdClient{t, conn}
	c.recv(18)
	c.send([]byte{0, 0, 0, nbdFlagFixedNewstyle | nbdFlagNoZeroes})
	typ, _ := c.option(nbdOptGo, []byte{0, 0, 0, 0, 0, 0})
	if typ != nbdRepInfo {
		t.Fatalf("GO answered %#x", typ)
	}
	if typ, _ := c.reply(nbdOptGo); typ != nbdRepAck {
		t.Fatalf("GO not acknowledged: %#x", typ)
	}
	return c
}

type sessionRig struct {
	sess    *Session
	sock    string
	logPath string
	lw      *Writer
	done    chan error
	mu      sync.Mutex
	lines   []string
}

func startSession(t *testing.T, state *os.File, size int64, opts ...func(*Session)) *sessionRig {
	t.Helper()
	dir := t.TempDir()
	r := &sessionRig{sock: filepath.Join(dir, "s.sock"), logPath: filepath.Join(dir, "l.zst"), done: make(chan error, 1)}
	var err error
	r.lw, err = Create(r.logPath, Header{DiskSize: uint64(size), Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	r.sess = &Session{Rec: &Recorder{State: state, Size: size, Log: r.lw}, HandshakeTimeout: 300 * time.Millisecond,
		Logf: func(f string, a ...any) { r.mu.Lock(); r.lines = append(r.lines, f); r.mu.Unlock() }}
	for _, o := range opts {
		o(r.sess)
	}
	go func() {
		err := r.sess.Run(ln)
		if e := FinishLog(r.lw, err); err == nil {
			err = e
		}
		r.done <- err
	}()
	t.Cleanup(r.sess.Stop)
	return r
}

func (r *sessionRig) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("session did not end")
		return nil
	}
}

func stateFile(t *testing.T, size int64, flag int) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.img")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// An idle first connection used to block the recorder forever, and every connection after the
// first got "no such file" (the socket was unlinked at the first accept). Now an idle one is
// dropped after the handshake timeout, the next client is served, and one arriving meanwhile
// is told busy with an NBD error reply.
func TestSessionIdleAndBusy(t *testing.T) {
	r := startSession(t, stateFile(t, 1<<20, os.O_RDWR), 1<<20)
	idle, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(600 * time.Millisecond) // past the timeout: dropped
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(idle); err != nil {
		t.Fatalf("idle connection not closed by the recorder: %v", err)
	}

	conn, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	c := goClient(t, conn)
	data := bytes.Repeat([]byte{0x5a}, 4096)
	if e := c.request(nbdCmdWrite, 0, 8192, 4096, data); e != 0 {
		t.Fatalf("write errno %d", e)
	}

	// A second client while the first is served: told busy, by name.
	other, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatalf("second connection: %v (want a busy reply, not a refused connection)", err)
	}
	oc := &nbdClient{t, other}
	oc.recv(18)
	oc.send([]byte{0, 0, 0, nbdFlagFixedNewstyle | nbdFlagNoZeroes})
	typ, msg := oc.option(nbdOptGo, []byte{0, 0, 0, 0, 0, 0})
	if typ != nbdRepErrPolicy || !strings.Contains(string(msg), "busy") {
		t.Fatalf("second client got %#x %q", typ, msg)
	}
	other.Close()

	// The first client goes on undisturbed.
	if e := c.request(nbdCmdFlush, 0, 0, 0, nil); e != 0 {
		t.Fatalf("flush errno %d", e)
	}
	c.send(discRequest())
	conn.Close()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	_, recs, err := readAllFile(t, r.logPath)
	if err != nil || len(recs) != 2 || recs[0].Type != TypeWrite || recs[0].Sector != 16 || recs[1].Type != TypeFlush {
		t.Fatalf("log: %d records, %v", len(recs), err)
	}
	r.mu.Lock()
	got := strings.Join(r.lines, "\n")
	r.mu.Unlock()
	if !strings.Contains(got, "dropped a connection") || !strings.Contains(got, "refused a second connection") {
		t.Errorf("recorder diagnostics: %q", got)
	}
	if _, err := os.Lstat(r.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// A state file that cannot be written (disk full) ends the session with an error, and the log
// ends with a mark naming it and no end record: it used to be closed "complete" with the write
// that failed, which the guest never saw acknowledged.
func TestSessionStateWriteFails(t *testing.T) {
	r := startSession(t, stateFile(t, 1<<20, os.O_RDONLY), 1<<20)
	conn, err := net.Dial("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := goClient(t, conn)
	h := make([]byte, 28) // a write: logged, then the state write fails and no reply comes
	binary.BigEndian.PutUint32(h, nbdRequestMagic)
	binary.BigEndian.PutUint16(h[6:], nbdCmdWrite)
	binary.BigEndian.PutUint32(h[24:], 512)
	c.send(h, make([]byte, 512))
	err = r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "writing state file") {
		t.Fatalf("session error %v", err)
	}
	_, recs, rerr := readAllFile(t, r.logPath)
	var de *DamageError
	if !errors.As(rerr, &de) || !errors.Is(rerr, ErrTruncated) {
		t.Fatalf("log reads %d records then %v, want damage (no end record)", len(recs), rerr)
	}
	if n := len(recs); n != 2 || recs[1].Type != TypeMark || !bytes.Contains(recs[1].Data, []byte("writing state file")) {
		t.Fatalf("%d records: %+v", n, recs)
	}
}

func discRequest() []byte {
	h := make([]byte, 28)
	binary.BigEndian.PutUint32(h, nbdRequestMagic)
	binary.BigEndian.PutUint16(h[6:], nbdCmdDisc)
	return h
}

func readAllFile(t *testing.T, path string) (Header, []Record, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, b)
}

// With Persistent, a client that breaks the protocol (or vanishes mid-request: QEMU killed) is
// dropped and the next one continues the same log; Stop ends the run with a complete log.
func TestSessionPersistentDropsBrokenClient(t *testing.T) {
	r := startSession(t, stateFile(t, 1<<20, os.O_RDWR), 1<<20, func(s *Session) { s.Persistent = true })
	data := bytes.Repeat([]byte{0x5a}, 4096)
	for i, bad := range [][]byte{make([]byte, 28), nil} {
		conn, err := net.Dial("unix", r.sock)
		if err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
		c := goClient(t, conn)
		if e := c.request(nbdCmdWrite, 0, uint64(8192*(i+1)), 4096, data); e != 0 {
			t.Fatalf("client %d: write errno %d", i+1, e)
		}
		if bad != nil {
			c.send(bad) // a request with magic 0
		} else {
			c.send(discRequest())
		}
		conn.Close()
	}
	// Both clients served: the second one's disconnection is logged before Stop.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		n := len(r.lines)
		r.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second client was not served")
		}
	}
	r.sess.Stop()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	_, recs, err := readAllFile(t, r.logPath)
	if err != nil || len(recs) != 2 || recs[0].Sector != 16 || recs[1].Sector != 32 {
		t.Fatalf("log: %d records, %v", len(recs), err)
	}
	r.mu.Lock()
	got := strings.Join(r.lines, "\n")
	r.mu.Unlock()
	if !strings.Contains(got, "dropped") {
		t.Errorf("diagnostics: %q", got)
	}
}
