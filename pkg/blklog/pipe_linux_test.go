package blklog

import (
	"os"
	"syscall"
	"testing"
)

// pipeSize is F_GETPIPE_SZ of f.
func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	var n uintptr
	var errno syscall.Errno
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) { n, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, 1032, 0) }); err != nil || errno != 0 {
		t.Fatalf("F_GETPIPE_SZ: %v %v", err, errno)
	}
	return int(n)
}

// A log read from a pipe (standard input) widens the pipe's buffer, and the log reads as it does
// from memory.
func TestWidenPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if n := pipeSize(t, pr); n >= pipeBuffer {
		t.Skipf("pipes here start with %d bytes", n)
	}
	b := writeLog(t, sampleRecords(300, 5), 20)
	go func() {
		_, _ = pw.Write(b)
		pw.Close()
	}()
	r, err := NewReader(pr, "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := pipeSize(t, pr); n < pipeBuffer {
		t.Errorf("the pipe's buffer is %d bytes, want %d", n, pipeBuffer)
	}
	_, want, werr := readAll(t, b)
	_, got, gerr := drain(r, nil)
	if werr != nil || gerr != nil || len(got) != len(want) {
		t.Fatalf("%d records (%v) read from the pipe, %d (%v) from memory", len(got), gerr, len(want), werr)
	}
}
