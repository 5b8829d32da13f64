package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// nbdRequest is the NBD request that logged rec (nil for a record that is none, a mark).
func nbdRequest(rec *blklog.Record) []byte {
	be := binary.BigEndian
	h := make([]byte, 28)
	be.PutUint32(h, 0x25609513)
	var typ uint16
	var data []byte
	switch rec.Type {
	case blklog.TypeRead:
		typ = 0
	case blklog.TypeWrite:
		typ, data = 1, rec.Data
	case blklog.TypeFlush:
		typ = 3
	case blklog.TypeDiscard:
		typ = 4
	case blklog.TypeWriteZeroes:
		typ = 6
	default:
		return nil
	}
	if rec.Flags&blklog.FlagFUA != 0 {
		be.PutUint16(h[4:], 1)
	}
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[16:], rec.Sector*512)
	be.PutUint32(h[24:], rec.Length)
	return append(h, data...)
}

// nbdReplay sends the requests of recs to the recorder on c all at once (pipelined, as QEMU
// does with a queue depth above one) and reads their replies.
func nbdReplay(t *testing.T, c net.Conn, recs []blklog.Record) {
	t.Helper()
	sent := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(c, 1<<20)
		for i := range recs {
			if _, err := bw.Write(nbdRequest(&recs[i])); err != nil {
				sent <- err
				return
			}
		}
		sent <- bw.Flush()
	}()
	br := bufio.NewReader(c)
	for i := range recs {
		if nbdRequest(&recs[i]) == nil {
			continue
		}
		r := make([]byte, 16)
		if _, err := io.ReadFull(br, r); err != nil || binary.BigEndian.Uint32(r[4:]) != 0 {
			t.Fatalf("reply to request %d: % x, %v", i, r, err)
		}
		if recs[i].Type == blklog.TypeRead {
			if _, err := io.CopyN(io.Discard, br, int64(recs[i].Length)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// record --analyze prints the operations while the client is still connected, and its whole
// output equals analyze of the log it wrote, line for line. The client replays the requests of
// a real capture (random-ext3-4k, 170 journal transactions of creates, writes, renames and
// deletes); with a queue of 1 record the analysis falls behind at once and catches up from
// the log, with the same output. The requests are pipelined, so the recorder logs them faster
// than the analysis takes them.
func TestRecordAnalyzeLive(t *testing.T) {
	const sc = "../../fixtures/real/random-ext3-4k/"
	for _, tc := range []struct {
		name, queue string
		flags       []string // given to record --analyze and to analyze alike
	}{{"keeps up", "", nil}, {"falls behind", "1", nil}, {"analyze's order", "", []string{"--split-at-flush=false"}}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock, logPath, live := filepath.Join(dir, "s.sock"), filepath.Join(dir, "io.log.zst"), filepath.Join(dir, "live.jsonl")
			t.Setenv("EXT3REPLAY_LIVE_QUEUE", tc.queue)
			p := startRecord(t, append([]string{"--image", sc + "image.raw.zst", "-o", logPath, "--socket", sock,
				"--analyze", "--format", "jsonl", "--analyze-output", live}, tc.flags...)...)
			src, err := blklog.Open(sc + "io.log.zst")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var recs []blklog.Record
			for {
				rec, err := src.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				rec.Data = bytes.Clone(rec.Data)
				recs = append(recs, rec)
			}
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			nbdHandshake(t, c)
			half := len(recs) * 6 / 10
			nbdReplay(t, c, recs[:half])
			// The guest is still connected: operations of what was committed so far are out.
			var early int
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				b, _ := os.ReadFile(live)
				if early = bytes.Count(b, []byte("\n")) - 1; early >= 10 {
					break
				}
			}
			if early < 10 {
				t.Fatalf("%d operations printed while the client is connected after %d of %d requests", early, half, len(recs))
			}
			nbdReplay(t, c, recs[half:])
			nbdDisconnect(c)
			code, rest := p.finish(t)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, rest)
			}
			if behind := strings.Contains(rest, "fell behind"); behind != (tc.queue != "") {
				t.Errorf("stderr says behind: %v, want %v:\n%s", behind, tc.queue != "", rest)
			}
			if !strings.Contains(rest, "operations:") || !strings.HasPrefix(lastLine(rest), "ext3replay record: client disconnected") {
				t.Errorf("stderr: the analysis summary, then the recorder's line last:\n%s", rest)
			}
			var want bytes.Buffer
			// Live output splits runs at flushes unless told not to: offline analyze likewise.
			offline := append([]string{"analyze", "--quiet", "--format", "jsonl", "--split-at-flush", sc + "image.raw.zst", logPath}, tc.flags...)
			if code := executeArgs(offline, &want, io.Discard); code != 0 {
				t.Fatalf("offline analyze: exit %d", code)
			}
			got, _ := os.ReadFile(live)
			sameJSONLRun(t, string(got), want.String())
			t.Logf("%d lines, %d operations out after %d of %d requests", strings.Count(want.String(), "\n"), early, half, len(recs))
			if n := strings.Count(want.String(), "\n"); n < 100 || early >= n-1 {
				t.Fatalf("%d lines offline, %d early: not a real comparison", n, early)
			}
		})
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return l[len(l)-1]
}

// An image the analysis cannot read is refused before the recorder says ready (exit 2), and the
// log and state file it had made are gone: the same command line works once corrected.
func TestRecordAnalyzeRefusesNonFS(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	writeBase(t, base, 1<<20)
	logPath := filepath.Join(dir, "io.log.zst")
	cmd := exec.Command(recorderBinary(t), "record", "--image", base, "-o", logPath, "--socket", filepath.Join(dir, "s.sock"), "--analyze")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(out, []byte("superblock")) || bytes.Contains(out, []byte("ready on")) {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
	for _, p := range []string{logPath, filepath.Join(dir, "io.log.state.img")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}
