package accuracy

import (
	"errors"
	"strings"
	"testing"
)

func TestWriteTableAndDetails(t *testing.T) {
	exp := mustExpected(t, groundTruth)
	bad := Score(exp, mustOps(t, `{"seq":1,"op":"create","path":"/ghost"}`))
	rows := []Row{
		{Scenario: "good", Log: "io.log.zst", Result: Score(exp, mustOps(t, perfect))},
		{Scenario: "good", Log: "writes.lwlog.zst", NoReads: true, Result: bad},
		{Scenario: "broken", Log: "io.log.zst", Err: errors.New("analyze: exit 2:\nbad | log")},
	}
	var tb strings.Builder
	if err := WriteTable(&tb, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(tb.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("table has %d lines, want header, rule and 3 rows:\n%s", len(lines), tb.String())
	}
	for _, want := range []string{
		"| good | io.log.zst | 5 | 5 | 1.00 | 1.00 | 2/2 | 1/1 | 0 (0) | 0 | 0 |",
		"| good | writes.lwlog.zst | 5 | 1 | 0.00 | 0.00 | 0/2 | n/a | 0 (0) | 0 | 0 |",
		"| broken | io.log.zst | error: analyze: exit 2: bad / log |",
	} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	var db strings.Builder
	if err := WriteDetails(&db, rows, 2); err != nil {
		t.Fatal(err)
	}
	d := db.String()
	if strings.Contains(d, "**good** (io.log.zst)") {
		t.Errorf("a perfect row has details:\n%s", d)
	}
	for _, want := range []string{"**good** (writes.lwlog.zst)", "- extra: `create /ghost`", "… and 3 more", "`/p/a` needs 10000 bytes, got 0"} {
		if !strings.Contains(d, want) {
			t.Errorf("details lack %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "reads not found") {
		t.Errorf("reads reported for a log without reads:\n%s", d)
	}
}
