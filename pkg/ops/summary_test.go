package ops

import (
	"bytes"
	"testing"
)

func TestSummaryGolden(t *testing.T) {
	s := Summary{Requests: 120, ReadRequests: 30, WriteRequests: 70, Flushes: 18, OtherRequests: 2,
		RequestBytes: 3 << 20, UnmatchedBytes: 512}
	for _, op := range loadRun(t, "run-a.jsonl") {
		s.Add(&op)
	}
	if s.Ops[Write] != 14 || s.Ops[Create] != 4 || s.AnomalyCount != 1 {
		t.Fatalf("counted %v, %d anomalies", s.Ops, s.AnomalyCount)
	}
	// unowned 4 KiB write + 512 unmatched request bytes
	if got := s.NeverAttributed(); got != 4096+512 {
		t.Fatalf("never attributed %d", got)
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-a.golden", b.Bytes())
}

func TestSummaryKeepsFewAnomalies(t *testing.T) {
	var s Summary
	for i := 0; i < MaxAnomalies+5; i++ {
		s.Add(&Op{Op: Anomaly, Reason: "bad"})
	}
	if s.AnomalyCount != MaxAnomalies+5 || len(s.Anomalies) != MaxAnomalies {
		t.Fatalf("%d anomalies, %d kept", s.AnomalyCount, len(s.Anomalies))
	}
	var b bytes.Buffer
	_ = s.WriteText(&b)
	if !bytes.Contains(b.Bytes(), []byte("... and 5 more")) {
		t.Fatalf("%s", b.Bytes())
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 30: "5.0 GiB", -2048: "-2.0 KiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("%d: %q want %q", n, got, want)
		}
	}
}
