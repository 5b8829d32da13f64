package opsparquet

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Volume is ops.Volume as a Parquet group (a struct column: data.write_bytes).
type Volume struct {
	Reads      int64 `parquet:"reads"`
	ReadBytes  int64 `parquet:"read_bytes"`
	Writes     int64 `parquet:"writes"`
	WriteBytes int64 `parquet:"write_bytes"`
}

// FileRow is one file of stats, with the fields of stats --format json's
// "rows" (ops.FileStats and write_amplification) plus run_id; optional ones are null where
// the json omits them.
type FileRow struct {
	RunID      string   `parquet:"run_id,dict"`
	Path       string   `parquet:"path"`
	Occurrence *int64   `parquet:"occurrence,optional"`
	Type       *string  `parquet:"type,optional,dict"`
	Created    *bool    `parquet:"created,optional"`
	Data       Volume   `parquet:"data"`
	Metadata   Volume   `parquet:"metadata"`
	FirstSeq   int64    `parquet:"first_seq"`
	LastSeq    int64    `parquet:"last_seq"`
	FirstT     *float64 `parquet:"first_t,optional"`
	LastT      *float64 `parquet:"last_t,optional"`
	History    []string `parquet:"history,list"`
	State      string   `parquet:"state"`
	Names      []string `parquet:"names,list"`
	Size       *uint64  `parquet:"size,optional"`
	Anomalies  *int64   `parquet:"anomalies,optional"`
	// WriteAmplification is all bytes written per byte of data written.
	WriteAmplification float64 `parquet:"write_amplification"`
}

// NewFileRow converts one file's statistics.
func NewFileRow(runID string, f *ops.FileStats) FileRow {
	r := FileRow{RunID: runID, Path: f.Path, Type: str(f.Type), Data: volume(f.Data), Metadata: volume(f.Metadata),
		FirstSeq: f.FirstSeq, LastSeq: f.LastSeq, History: f.History, State: f.State, Names: f.Names,
		WriteAmplification: f.WriteAmplification()}
	if f.Occurrence != 0 {
		r.Occurrence = ptr(int64(f.Occurrence))
	}
	if f.Created {
		r.Created = ptr(true)
	}
	if f.FirstT != 0 {
		r.FirstT = ptr(f.FirstT)
	}
	if f.LastT != 0 {
		r.LastT = ptr(f.LastT)
	}
	if f.Size != nil {
		r.Size = ptr(*f.Size)
	}
	if f.Anomalies != 0 {
		r.Anomalies = ptr(int64(f.Anomalies))
	}
	return r
}

// WriteStats writes one row per file of rows (stats --by file, after its
// filters, sorting and --top).
func WriteStats(w io.Writer, runID string, rows []*ops.Row) error {
	pw := parquet.NewGenericWriter[FileRow](w, writerOptions("ext3replay.schema", "stats/1", "ext3replay.run_id", runID)...)
	out := make([]FileRow, 0, len(rows))
	for _, r := range rows {
		if r.File == nil {
			return fmt.Errorf("parquet stats are per file: aggregate directories in the query")
		}
		if r.File.Data.Overflow || r.File.Metadata.Overflow {
			// As the other stats formats: a clamped sum is not written as if it were right.
			return fmt.Errorf("stats: %s: %w", ops.QuotePath(r.File.Path), ops.ErrOverflow)
		}
		out = append(out, NewFileRow(runID, r.File))
	}
	if _, err := pw.Write(out); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

// ReadFileRows reads a file written by WriteStats.
func ReadFileRows(r io.ReaderAt, size int64) ([]FileRow, error) {
	return readAll[FileRow](r, size)
}

// volume is the Parquet group of v (its Overflow flag is not a column: stats refuses to print
// clamped sums, see ops.ErrOverflow).
func volume(v ops.Volume) Volume {
	return Volume{Reads: v.Reads, ReadBytes: v.ReadBytes, Writes: v.Writes, WriteBytes: v.WriteBytes}
}
