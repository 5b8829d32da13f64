package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// log cat --format jsonl names its fields as analyze does (seq, t, op, bytes): an analyze op and
// the record it came from share seq and t. The old names (i, t_ns, type, length) still carry
// the same values for the scripts that read them.
func TestLogCatJSONLAlignedWithAnalyze(t *testing.T) {
	needFixture(t)
	logPath := filepath.Join(fixtureDir, "io.log.zst")
	code, cat := run(t, "log", "cat", "--format", "jsonl", logPath)
	if code != exitOK {
		t.Fatalf("log cat: exit %d", code)
	}
	type rec struct {
		Seq    int64    `json:"seq"`
		T      *float64 `json:"t"`
		Op     string   `json:"op"`
		Bytes  uint32   `json:"bytes"`
		I      int64    `json:"i"`
		TimeNS *int64   `json:"t_ns"`
		Type   string   `json:"type"`
		Length uint32   `json:"length"`
	}
	bySeq := map[int64]rec{}
	sc := bufio.NewScanner(strings.NewReader(cat))
	for sc.Scan() {
		var r rec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		if r.Seq != r.I || r.Op != r.Type || r.Bytes != r.Length || r.T == nil || r.TimeNS == nil || *r.T != float64(*r.TimeNS)/1e9 {
			t.Fatalf("new and old names disagree: %s", sc.Text())
		}
		bySeq[r.Seq] = r
	}
	if len(bySeq) < 100 {
		t.Fatalf("%d records", len(bySeq))
	}
	code, ana := run(t, "analyze", "--format", "jsonl", filepath.Join(fixtureDir, "image.raw.zst"), logPath)
	if code != exitOK {
		t.Fatalf("analyze: exit %d", code)
	}
	n := 0
	sc = bufio.NewScanner(strings.NewReader(ana))
	for sc.Scan() {
		var op struct {
			Seq *int64  `json:"seq"`
			T   float64 `json:"t"`
			Op  string  `json:"op"`
		}
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil || op.Seq == nil {
			continue // the run header
		}
		r, ok := bySeq[*op.Seq]
		if !ok || *r.T != op.T {
			t.Fatalf("analyze %s: log cat has %+v", sc.Text(), r)
		}
		// (A write op may carry the seq of the flush or commit that settled whose it was.)
		if op.Op == "read" && r.Op != op.Op {
			t.Errorf("analyze %s from a %s record", sc.Text(), r.Op)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no ops compared")
	}
}

// log info --format json holds what the text form does, and a damaged log says so in it too.
func TestLogInfoJSON(t *testing.T) {
	needFixture(t)
	logPath := filepath.Join(fixtureDir, "io.log.zst")
	code, out := run(t, "log", "info", "--format", "json", logPath)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var li struct {
		Records int64 `json:"records"`
		Ops     []struct {
			Op    string `json:"op"`
			Count int64  `json:"count"`
			Bytes int64  `json:"bytes"`
		} `json:"ops"`
		Payload int64  `json:"payload_bytes"`
		Status  string `json:"status"`
		Image   *struct {
			Size int64 `json:"size"`
		} `json:"image"`
	}
	if err := json.Unmarshal([]byte(out), &li); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, cat := run(t, "log", "cat", logPath)
	lines := strings.Split(strings.TrimSpace(cat), "\n")
	var sum int64
	for _, o := range li.Ops {
		sum += o.Count
		if want := int64(strings.Count(cat, "\t"+o.Op+"\t") + strings.Count(cat, "\t"+o.Op+"\n")); o.Count != want {
			t.Errorf("%s: %d, log cat has %d", o.Op, o.Count, want)
		}
	}
	if li.Records != int64(len(lines)) || sum != li.Records || li.Status != "complete" || li.Image == nil || li.Payload == 0 {
		t.Errorf("log info json %+v; log cat has %d records", li, len(lines))
	}
	_, text := run(t, "log", "info", logPath)
	for _, want := range []string{"records:     " + itoa(li.Records), "status:      complete"} {
		if !strings.Contains(text, want) {
			t.Errorf("text form lacks %q:\n%s", want, text)
		}
	}

	damaged := truncatedLog(t)
	var buf bytes.Buffer
	code = executeArgs([]string{"log", "info", "--format", "json", damaged}, &buf, io.Discard)
	var d struct {
		Records int64  `json:"records"`
		Status  string `json:"status"`
		Damage  string `json:"damage"`
	}
	if code != exitDamaged || json.Unmarshal(buf.Bytes(), &d) != nil || d.Status != "damaged" || d.Damage == "" || d.Records < 9 {
		t.Errorf("damaged: exit %d, %s", code, buf.String())
	}
	if code, _ := run(t, "log", "info", "--format", "yaml", logPath); code != exitUsage {
		t.Errorf("--format yaml: exit %d", code)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// log cat leaves payloads out of memory only without --data: with it, a large write's payload
// is printed whole, as the log holds it.
func TestLogCatDataWhole(t *testing.T) {
	logPath := filepath.Join("../../fixtures/real/bigfile-ext3-4k", "io.log.zst")
	lr, err := blklog.Open(logPath)
	if err != nil {
		t.Skipf("fixture: %v", err)
	}
	defer lr.Close()
	want := map[int64][]byte{}
	for {
		rec, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type == blklog.TypeWrite && len(rec.Data) >= blklog.DefaultOmitMin {
			want[rec.Index] = bytes.Clone(rec.Data)
		}
	}
	if len(want) == 0 {
		t.Fatal("no write large enough to be filtered")
	}
	code, cat := run(t, "log", "cat", "--format", "jsonl", "--data", logPath)
	if code != exitOK {
		t.Fatalf("log cat --data: exit %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(cat))
	sc.Buffer(nil, 64<<20)
	seen := 0
	for sc.Scan() {
		var r struct {
			Seq  int64  `json:"seq"`
			Data []byte `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if w, ok := want[r.Seq]; ok {
			seen++
			if !bytes.Equal(r.Data, w) {
				t.Fatalf("record %d: --data printed %d bytes that are not the write's %d", r.Seq, len(r.Data), len(w))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Fatalf("%d of %d large writes printed", seen, len(want))
	}
}
