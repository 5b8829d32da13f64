// Package opsparquet writes runs as Parquet files, so that fleets of runs are
// queried with DuckDB, Spark or ClickHouse over a folder of files
// (docs/parquet.md has the schema and queries).
//
// The schema is the jsonl schema (docs/output-formats.md) plus run_id: one
// column per jsonl field, with the same name, null exactly where jsonl omits
// the field. It lives in its own package so that the core (pkg/ops and the
// commands that do not write Parquet) does not pull the Parquet library in.
package opsparquet

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// OpRow is one op as a Parquet row. Pointer fields are optional columns: nil
// (null) where the jsonl line has no such field.
type OpRow struct {
	RunID     string   `parquet:"run_id,dict"`
	Seq       int64    `parquet:"seq"`
	T         *float64 `parquet:"t,optional"`
	Op        string   `parquet:"op,dict"`
	Path      *string  `parquet:"path,optional"`
	To        *string  `parquet:"to,optional"`
	Ino       *uint32  `parquet:"ino,optional"`
	Sector    *uint64  `parquet:"sector,optional"`
	Bytes     *int64   `parquet:"bytes,optional"`
	Kind      *string  `parquet:"kind,optional,dict"`
	Overwrite *bool    `parquet:"overwrite,optional"`
	Size      *uint64  `parquet:"size,optional"`
	Reason    *string  `parquet:"reason,optional"`
}

// NewOpRow converts op, applying the jsonl omission rules (ops.Op's json
// tags): zero optional fields are null, except sector and bytes of reads and
// writes, and a truncate's size.
func NewOpRow(runID string, o *ops.Op) OpRow {
	// Copies, never pointers into o: writers do not retain the op they are given.
	r := OpRow{RunID: runID, Seq: o.Seq, Op: string(o.Op)}
	if o.Size != nil {
		r.Size = ptr(*o.Size)
	}
	if o.T != 0 {
		r.T = ptr(o.T)
	}
	r.Path = str(o.Path)
	r.To = str(o.To)
	if o.Ino != 0 {
		r.Ino = ptr(o.Ino)
	}
	if o.Sector != 0 || o.IsIO() {
		r.Sector = ptr(o.Sector)
	}
	if o.Bytes != 0 || o.IsIO() {
		r.Bytes = ptr(o.Bytes)
	}
	r.Kind = str(string(o.Kind))
	if o.Overwrite {
		r.Overwrite = ptr(true)
	}
	r.Reason = str(o.Reason)
	return r
}

func ptr[T any](v T) *T { return &v }

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ToOp converts a row back to the op it was made from.
func (r *OpRow) ToOp() ops.Op {
	o := ops.Op{Seq: r.Seq, Op: ops.Type(r.Op)}
	if r.Size != nil {
		o.Size = ptr(*r.Size)
	}
	if r.T != nil {
		o.T = *r.T
	}
	o.Path, o.To, o.Reason = deref(r.Path), deref(r.To), deref(r.Reason)
	o.Kind = ops.Kind(deref(r.Kind))
	if r.Ino != nil {
		o.Ino = *r.Ino
	}
	if r.Sector != nil {
		o.Sector = *r.Sector
	}
	if r.Bytes != nil {
		o.Bytes = *r.Bytes
	}
	if r.Overwrite != nil {
		o.Overwrite = *r.Overwrite
	}
	return o
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// batch is how many rows are handed to the library at once.
const batch = 4096

// Writer streams ops into a Parquet file; it implements ops.Writer. Close
// writes the footer (a Parquet file is only readable once closed) but does
// not close the underlying io.Writer.
type Writer struct {
	w     *parquet.GenericWriter[OpRow]
	runID string
	rows  []OpRow
}

// writerOptions are the file-wide settings: zstd pages (the project already
// depends on zstd) and the producer.
func writerOptions(kv ...string) []parquet.WriterOption {
	o := []parquet.WriterOption{parquet.Compression(&zstd.Codec{}), parquet.CreatedBy("ext3replay", "", "")}
	for i := 0; i+1 < len(kv); i += 2 {
		o = append(o, parquet.KeyValueMetadata(kv[i], kv[i+1]))
	}
	return o
}

// NewWriter returns a writer whose rows all carry runID.
func NewWriter(w io.Writer, runID string) *Writer {
	return &Writer{w: parquet.NewGenericWriter[OpRow](w, writerOptions("ext3replay.schema", "ops/1", "ext3replay.run_id", runID)...), runID: runID}
}

// Write adds one op.
func (w *Writer) Write(op *ops.Op) error {
	w.rows = append(w.rows, NewOpRow(w.runID, op))
	if len(w.rows) >= batch {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.rows) == 0 {
		return nil
	}
	if _, err := w.w.Write(w.rows); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	w.rows = w.rows[:0]
	return nil
}

// Close flushes the rows and writes the footer.
func (w *Writer) Close() error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

// ReadRows reads the rows of a file written by Writer.
func ReadRows(r io.ReaderAt, size int64) ([]OpRow, error) {
	return readAll[OpRow](r, size)
}

// ReadOps reads a file written by Writer: its run id and its ops.
func ReadOps(r io.ReaderAt, size int64) (string, []ops.Op, error) {
	rows, err := ReadRows(r, size)
	if err != nil {
		return "", nil, err
	}
	var id string
	out := make([]ops.Op, len(rows))
	for i := range rows {
		if i == 0 {
			id = rows[i].RunID
		} else if rows[i].RunID != id {
			return "", nil, fmt.Errorf("parquet: row %d: run_id %q after %q: more than one run in the file", i, rows[i].RunID, id)
		}
		out[i] = rows[i].ToOp()
	}
	return id, out, nil
}

// readAll reads every row of a Parquet file as T.
func readAll[T any](r io.ReaderAt, size int64) ([]T, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	pr := parquet.NewGenericReader[T](f)
	defer pr.Close()
	rows := make([]T, pr.NumRows())
	n, err := pr.Read(rows)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("parquet: row %d: %w", n, err)
	}
	if int64(n) != pr.NumRows() {
		return nil, fmt.Errorf("parquet: read %d of %d rows", n, pr.NumRows())
	}
	return rows, nil
}
