package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/spf13/cobra"
)

func newLogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Inspect block-I/O logs (native, dm-log-writes)",
		Example: `  ext3replay log info io.log.zst
  ext3replay log cat io.log.zst --format jsonl | head`,
	}
	cmd.AddCommand(newLogInfoCmd(), newLogCatCmd())
	return cmd
}

func newLogInfoCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info LOG",
		Short: "Print a log's header, record counts by type, bytes and duration",
		Long: `info reads the whole log and prints its header (format, source, disk size,
identity of the starting image), the number of records of each type, the
payload bytes and the time span. A truncated or damaged log is summarised up
to the damage, which is reported (exit status 4). --format json prints the
same as one JSON document (docs/log-format.md).`,
		Example: `  ext3replay log info io.log.zst
  ext3replay log info writes.lwlog --format json | jq .ops
  zstd -dc io.log.zst | ext3replay log info -`,
		Args: cobra.ExactArgs(1),
		RunE: checkedOutput(func(cmd *cobra.Command, args []string, out io.Writer) error {
			return runLogInfo(cmd, args, out, format)
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text|json")
	return cmd
}

type logCatOptions struct {
	format string
	data   bool
}

func newLogCatCmd() *cobra.Command {
	var o logCatOptions
	cmd := &cobra.Command{
		Use:   "cat LOG [--format text|jsonl] [--data]",
		Short: "Print one line per record",
		Long: `cat prints every record of the log, one per line, without payloads unless
--data is given (hex in text, base64 in jsonl). Text columns: record number,
time in seconds from the start, type, first 512-byte sector, length in bytes,
flags. A damaged log prints the records before the damage, then the error.`,
		Example: `  ext3replay log cat io.log.zst
  ext3replay log cat io.log.zst --format jsonl --data
  ssh host cat io.log.zst | ext3replay log cat -`,
		Args: cobra.ExactArgs(1),
		RunE: checkedOutput(func(cmd *cobra.Command, args []string, out io.Writer) error {
			return runLogCat(cmd, args, out, &o)
		}),
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text|jsonl")
	cmd.Flags().BoolVar(&o.data, "data", false, "include payloads")
	return cmd
}

func flagNames(f blklog.Flags) []string {
	var s []string
	if f&blklog.FlagFUA != 0 {
		s = append(s, "fua")
	}
	if f&blklog.FlagNoPayload != 0 {
		s = append(s, "no-payload")
	}
	return s
}

// logErr gives reader errors (unreadable or damaged log) the input-error status.
func logErr(err error) error { return &exitError{code: exitUsage, err: err} }

// partialErr is logErr after part of the log was printed: damage has its own status.
func partialErr(err error) error {
	var de *blklog.DamageError
	if errors.As(err, &de) {
		return &exitError{code: exitDamaged, err: err}
	}
	return logErr(err)
}

// logInfo is what log info reports; with --format json it is printed as is (field names stable).
type logInfo struct {
	File        string          `json:"file"`
	Format      string          `json:"format"`
	Version     int             `json:"version"`
	Source      string          `json:"source,omitempty"`
	SectorSize  uint32          `json:"sector_size"`
	DiskSize    uint64          `json:"disk_size,omitempty"` // 0: unknown
	Image       *logInfoImage   `json:"image,omitempty"`     // nil: not recorded
	Started     string          `json:"started,omitempty"`   // RFC 3339, UTC
	Records     int64           `json:"records"`
	Ops         []logInfoOpType `json:"ops"`
	FUA         int64           `json:"fua"`
	NoPayload   int64           `json:"no_payload"`
	Payload     int64           `json:"payload_bytes"`
	FirstT      *float64        `json:"first_t,omitempty"` // seconds, as log cat's and analyze's t
	LastT       *float64        `json:"last_t,omitempty"`
	Status      string          `json:"status"` // "complete" or "damaged"
	Damage      string          `json:"damage,omitempty"`
	readErr     error
	firstNS     int64
	lastNS      int64
	hasTimes    bool
	countByType map[blklog.Type]*logInfoOpType
}

type logInfoImage struct {
	Size         int64  `json:"size"`
	RegionLen    int64  `json:"region_len"`
	RegionSHA256 string `json:"region_sha256"`
	FullSHA256   string `json:"full_sha256,omitempty"`
}

// logInfoOpType counts the records of one type (op, as log cat names it).
type logInfoOpType struct {
	Op    string `json:"op"`
	Count int64  `json:"count"`
	Bytes int64  `json:"bytes"`
}

// logInfoTypes is the order log info lists record types in.
var logInfoTypes = []blklog.Type{blklog.TypeRead, blklog.TypeWrite, blklog.TypeFlush, blklog.TypeDiscard, blklog.TypeWriteZeroes, blklog.TypeMark}

// readLogInfo reads the whole log; a read error ends the count and is kept in readErr.
func readLogInfo(name string, r blklog.Reader) *logInfo {
	h := r.Header()
	li := &logInfo{File: name, Format: string(h.Format), Version: int(h.Version), Source: h.Source, SectorSize: h.SectorSize,
		DiskSize: h.DiskSize, countByType: map[blklog.Type]*logInfoOpType{}}
	if h.Image.Known {
		li.Image = &logInfoImage{Size: int64(h.Image.Size), RegionLen: int64(h.Image.RegionLen), RegionSHA256: fmt.Sprintf("%x", h.Image.RegionSHA256)}
		if h.Image.HasFull {
			li.Image.FullSHA256 = fmt.Sprintf("%x", h.Image.FullSHA256)
		}
	}
	if h.StartUnixNS != 0 {
		li.Started = time.Unix(0, h.StartUnixNS).UTC().Format(time.RFC3339Nano)
	}
	for _, t := range logInfoTypes {
		li.countByType[t] = &logInfoOpType{Op: t.String()}
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			li.readErr = err
			break
		}
		li.Records++
		c := li.countByType[rec.Type]
		if c == nil {
			c = &logInfoOpType{Op: rec.Type.String()}
			li.countByType[rec.Type] = c
		}
		c.Count++
		c.Bytes += int64(rec.Length)
		if rec.Type != blklog.TypeMark {
			li.Payload += int64(len(rec.Data))
		}
		if rec.Flags&blklog.FlagFUA != 0 {
			li.FUA++
		}
		if rec.Flags&blklog.FlagNoPayload != 0 {
			li.NoPayload++
		}
		if rec.Flags&blklog.FlagHasTime != 0 {
			if !li.hasTimes {
				li.firstNS, li.hasTimes = rec.TimeNS, true
			}
			li.lastNS = rec.TimeNS
		}
	}
	li.Ops = []logInfoOpType{}
	for _, t := range logInfoTypes {
		if c := li.countByType[t]; c.Count > 0 {
			li.Ops = append(li.Ops, *c)
		}
	}
	if li.hasTimes {
		f, l := float64(li.firstNS)/1e9, float64(li.lastNS)/1e9
		li.FirstT, li.LastT = &f, &l
	}
	li.Status = "complete"
	if li.readErr != nil {
		li.Status, li.Damage = "damaged", li.readErr.Error()
	}
	return li
}

func runLogInfo(cmd *cobra.Command, args []string, out io.Writer, format string) error {
	if format != "text" && format != "json" {
		return usageErr("log info: --format %q: want text or json", format)
	}
	r, err := openLogArg(args[0])
	if err != nil {
		return logErr(err)
	}
	defer r.Close()
	skipPayloads(r)
	li := readLogInfo(args[0], r)
	w := bufio.NewWriter(out)
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(li); err != nil {
			return err
		}
	} else {
		writeLogInfo(w, li)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if li.readErr != nil {
		return partialErr(li.readErr)
	}
	return nil
}

func writeLogInfo(w io.Writer, li *logInfo) {
	fmt.Fprintf(w, "file:        %s\n", li.File)
	fmt.Fprintf(w, "format:      %s version %d\n", li.Format, li.Version)
	if li.Source != "" {
		fmt.Fprintf(w, "source:      %s\n", ops.SafeText(li.Source))
	}
	fmt.Fprintf(w, "sector size: %d\n", li.SectorSize)
	if li.DiskSize != 0 {
		fmt.Fprintf(w, "disk size:   %d bytes (%s)\n", li.DiskSize, ops.HumanBytes(int64(li.DiskSize)))
	} else {
		fmt.Fprintf(w, "disk size:   unknown\n")
	}
	if li.Image != nil {
		fmt.Fprintf(w, "image:       %d bytes, sha256(first %d bytes) %s\n", li.Image.Size, li.Image.RegionLen, li.Image.RegionSHA256)
		if li.Image.FullSHA256 != "" {
			fmt.Fprintf(w, "image hash:  sha256 %s\n", li.Image.FullSHA256)
		}
	} else {
		fmt.Fprintf(w, "image:       not recorded (the log cannot be checked against an image)\n")
	}
	if li.Started != "" {
		fmt.Fprintf(w, "started:     %s\n", li.Started)
	}
	fmt.Fprintf(w, "records:     %d\n", li.Records)
	for _, c := range li.Ops {
		if c.Op == blklog.TypeFlush.String() || c.Op == blklog.TypeMark.String() {
			fmt.Fprintf(w, "  %-13s %d\n", c.Op+":", c.Count)
		} else {
			fmt.Fprintf(w, "  %-13s %d, %d bytes (%s)\n", c.Op+":", c.Count, c.Bytes, ops.HumanBytes(c.Bytes))
		}
	}
	if li.FUA > 0 {
		fmt.Fprintf(w, "  %-13s %d\n", "FUA:", li.FUA)
	}
	if li.NoPayload > 0 {
		fmt.Fprintf(w, "  %-13s %d (writes whose data was not captured)\n", "no payload:", li.NoPayload)
	}
	fmt.Fprintf(w, "payload:     %d bytes (%s)\n", li.Payload, ops.HumanBytes(li.Payload))
	if li.hasTimes {
		fmt.Fprintf(w, "duration:    %.6fs (record times %.6fs to %.6fs)\n",
			float64(li.lastNS-li.firstNS)/1e9, *li.FirstT, *li.LastT)
	} else {
		fmt.Fprintf(w, "duration:    unknown (no timestamps)\n")
	}
	if li.readErr != nil {
		fmt.Fprintf(w, "status:      DAMAGED: %v\n", li.readErr)
		return
	}
	fmt.Fprintf(w, "status:      complete\n")
}

// jsonRecord is one line of log cat --format jsonl. seq, t, op and bytes are analyze's names for
// the same things; i, t_ns, type and length are the names before issue 16, still written so
// that scripts reading them keep working (docs/log-format.md).
type jsonRecord struct {
	Seq    int64    `json:"seq"`
	T      *float64 `json:"t,omitempty"` // seconds, as analyze's t
	Op     string   `json:"op"`
	Sector uint64   `json:"sector"`
	Bytes  uint32   `json:"bytes"`
	Flags  []string `json:"flags,omitempty"`
	Text   string   `json:"text,omitempty"`
	Data   string   `json:"data,omitempty"`

	I      int64  `json:"i"`
	TimeNS *int64 `json:"t_ns,omitempty"`
	Type   string `json:"type"`
	Length uint32 `json:"length"`
}

func runLogCat(cmd *cobra.Command, args []string, out io.Writer, o *logCatOptions) error {
	format := o.format
	if format != "text" && format != "jsonl" {
		return usageErr("log cat: --format %q: want text or jsonl", format)
	}
	r, err := openLogArg(args[0])
	if err != nil {
		return logErr(err)
	}
	defer r.Close()
	if !o.data {
		skipPayloads(r)
	}
	w := bufio.NewWriterSize(out, 1<<16)
	defer w.Flush()
	enc := json.NewEncoder(w)
	var line []byte
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			w.Flush()
			return partialErr(err)
		}
		if format == "jsonl" {
			j := jsonRecord{Seq: rec.Index, Op: rec.Type.String(), Sector: rec.Sector, Bytes: rec.Length, Flags: flagNames(rec.Flags),
				I: rec.Index, Type: rec.Type.String(), Length: rec.Length}
			if rec.Flags&blklog.FlagHasTime != 0 {
				ns, sec := rec.TimeNS, float64(rec.TimeNS)/1e9
				j.TimeNS, j.T = &ns, &sec
			}
			if rec.Type == blklog.TypeMark {
				j.Text = string(rec.Data)
			} else if o.data && len(rec.Data) > 0 {
				j.Data = base64.StdEncoding.EncodeToString(rec.Data)
			}
			if err := enc.Encode(&j); err != nil {
				return err
			}
			continue
		}
		line = line[:0]
		line = strconv.AppendInt(line, rec.Index, 10)
		line = append(line, '\t')
		if rec.Flags&blklog.FlagHasTime != 0 {
			line = strconv.AppendFloat(line, float64(rec.TimeNS)/1e9, 'f', 6, 64)
		} else {
			line = append(line, '-')
		}
		line = append(line, '\t')
		line = append(line, rec.Type.String()...)
		switch rec.Type {
		case blklog.TypeFlush:
		case blklog.TypeMark:
			line = append(line, '\t')
			line = strconv.AppendQuote(line, string(rec.Data))
		default:
			line = append(line, '\t')
			line = strconv.AppendUint(line, rec.Sector, 10)
			line = append(line, '\t')
			line = strconv.AppendUint(line, uint64(rec.Length), 10)
		}
		if f := flagNames(rec.Flags); len(f) > 0 {
			line = append(line, '\t')
			line = append(line, strings.Join(f, ",")...)
		}
		if o.data && rec.Type != blklog.TypeMark && len(rec.Data) > 0 {
			line = append(line, "\tdata="...)
			line = hex.AppendEncode(line, rec.Data)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
}

// skipPayloads lets r leave the payloads of large writes out of memory, their CRC-32C still
// checked, for a command that counts them and never looks at them (blklog.PayloadFilter).
func skipPayloads(r blklog.Reader) {
	blklog.SetPayloadFilter(r, blklog.PayloadFilter{Unit: blklog.SectorSize, Skip: func(uint64, []byte) bool { return true }})
}

// openLogArg opens the log named on the command line; "-" reads it from
// standard input, as analyze does.
func openLogArg(path string) (blklog.Reader, error) {
	if path == "-" {
		return blklog.NewReader(os.Stdin, "stdin")
	}
	return blklog.Open(path)
}
