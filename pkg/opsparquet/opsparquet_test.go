package opsparquet

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// The schema is a public interface (docs/parquet.md): columns are only added.
func TestOpSchema(t *testing.T) {
	want := `message OpRow {
	required binary run_id (STRING);
	required int64 seq (INT(64,true));
	optional double t;
	required binary op (STRING);
	optional binary path (STRING);
	optional binary to (STRING);
	optional int32 ino (INT(32,false));
	optional int64 sector (INT(64,false));
	optional int64 bytes (INT(64,true));
	optional binary kind (STRING);
	optional boolean overwrite;
	optional int64 size (INT(64,false));
	optional binary reason (STRING);
}`
	if got := parquet.SchemaOf(OpRow{}).String(); got != want {
		t.Errorf("schema changed:\n%s", got)
	}
	// Every jsonl field has its column, in the same order.
	var cols []string
	for _, f := range parquet.SchemaOf(OpRow{}).Fields()[1:] {
		cols = append(cols, f.Name())
	}
	if strings.Join(cols, ",") != strings.Join(ops.CSVHeader, ",") {
		t.Errorf("columns %v, jsonl fields %v", cols, ops.CSVHeader)
	}
}

func TestRoundTrip(t *testing.T) {
	zero := uint64(0)
	run := []ops.Op{
		{Seq: 0, Op: ops.Read, Sector: 0, Bytes: 1024, Kind: ops.KindSuper}, // sector 0 is kept
		{Seq: 1, T: 0.25, Op: ops.Create, Path: "/a", Ino: 12},
		{Seq: 2, T: 0.5, Op: ops.Move, Path: "/a", To: "/b", Ino: 12, Overwrite: true},
		{Seq: 3, T: 0.75, Op: ops.Truncate, Path: "/b", Ino: 12, Size: &zero},
		{Seq: 4, T: 1, Op: ops.Anomaly, Path: "/d", Kind: ops.KindDir, Sector: 96, Reason: "rec_len 3 < 8"},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, "r1")
	for i := range run {
		if err := w.Write(&run[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRows(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Sector == nil || *rows[0].Sector != 0 || rows[0].Path != nil || rows[1].Sector != nil || rows[3].Size == nil || *rows[3].Size != 0 {
		t.Errorf("null rules: %+v %+v %+v", rows[0], rows[1], rows[3])
	}
	id, got, err := ReadOps(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || id != "r1" {
		t.Fatalf("id %q err %v", id, err)
	}
	if !reflect.DeepEqual(got, run) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, run)
	}
	if _, _, err := ReadOps(bytes.NewReader([]byte("not parquet")), 11); err == nil {
		t.Error("garbage: no error")
	}
}
