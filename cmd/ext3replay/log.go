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
	return &cobra.Command{
		Use:   "info LOG",
		Short: "Print a log's header, record counts by type, bytes and duration",
		Long: `info reads the whole log and prints its header (format, source, disk size,
identity of the starting image), the number of records of each type, the
payload bytes and the time span. A truncated or damaged log is summarised up
to the damage, which is reported (exit status 4).`,
		Example: `  ext3replay log info io.log.zst
  ext3replay log info writes.lwlog
  zstd -dc io.log.zst | ext3replay log info -`,
		Args: cobra.ExactArgs(1),
		RunE: checkedOutput(runLogInfo),
	}
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
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text or jsonl")
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

func runLogInfo(cmd *cobra.Command, args []string, out io.Writer) error {
	r, err := openLogArg(args[0])
	if err != nil {
		return logErr(err)
	}
	defer r.Close()
	h := r.Header()
	var (
		counts   = map[blklog.Type]int64{}
		bytes    = map[blklog.Type]int64{}
		payload  int64
		fua, nop int64
		n        int64
		first    = int64(-1)
		last     int64
		readErr  error
	)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		n++
		counts[rec.Type]++
		bytes[rec.Type] += int64(rec.Length)
		if rec.Type != blklog.TypeMark {
			payload += int64(len(rec.Data))
		}
		if rec.Flags&blklog.FlagFUA != 0 {
			fua++
		}
		if rec.Flags&blklog.FlagNoPayload != 0 {
			nop++
		}
		if rec.Flags&blklog.FlagHasTime != 0 {
			if first < 0 {
				first = rec.TimeNS
			}
			last = rec.TimeNS
		}
	}
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "file:        %s\n", args[0])
	fmt.Fprintf(w, "format:      %s version %d\n", h.Format, h.Version)
	if h.Source != "" {
		fmt.Fprintf(w, "source:      %s\n", ops.SafeText(h.Source))
	}
	fmt.Fprintf(w, "sector size: %d\n", h.SectorSize)
	if h.DiskSize != 0 {
		fmt.Fprintf(w, "disk size:   %d bytes (%s)\n", h.DiskSize, ops.HumanBytes(int64(h.DiskSize)))
	} else {
		fmt.Fprintf(w, "disk size:   unknown\n")
	}
	if h.Image.Known {
		fmt.Fprintf(w, "image:       %d bytes, sha256(first %d bytes) %x\n", h.Image.Size, h.Image.RegionLen, h.Image.RegionSHA256)
		if h.Image.HasFull {
			fmt.Fprintf(w, "image hash:  sha256 %x\n", h.Image.FullSHA256)
		}
	} else {
		fmt.Fprintf(w, "image:       not recorded (the log cannot be checked against an image)\n")
	}
	if h.StartUnixNS != 0 {
		fmt.Fprintf(w, "started:     %s\n", time.Unix(0, h.StartUnixNS).UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "records:     %d\n", n)
	for _, t := range []blklog.Type{blklog.TypeRead, blklog.TypeWrite, blklog.TypeFlush, blklog.TypeDiscard, blklog.TypeWriteZeroes, blklog.TypeMark} {
		if counts[t] == 0 {
			continue
		}
		if t == blklog.TypeFlush || t == blklog.TypeMark {
			fmt.Fprintf(w, "  %-13s %d\n", t.String()+":", counts[t])
		} else {
			fmt.Fprintf(w, "  %-13s %d, %d bytes (%s)\n", t.String()+":", counts[t], bytes[t], ops.HumanBytes(bytes[t]))
		}
	}
	if fua > 0 {
		fmt.Fprintf(w, "  %-13s %d\n", "FUA:", fua)
	}
	if nop > 0 {
		fmt.Fprintf(w, "  %-13s %d (writes whose data was not captured)\n", "no payload:", nop)
	}
	fmt.Fprintf(w, "payload:     %d bytes (%s)\n", payload, ops.HumanBytes(payload))
	if first >= 0 {
		fmt.Fprintf(w, "duration:    %.6fs (record times %.6fs to %.6fs)\n",
			float64(last-first)/1e9, float64(first)/1e9, float64(last)/1e9)
	} else {
		fmt.Fprintf(w, "duration:    unknown (no timestamps)\n")
	}
	if readErr != nil {
		fmt.Fprintf(w, "status:      DAMAGED: %v\n", readErr)
		w.Flush()
		return partialErr(readErr)
	}
	fmt.Fprintf(w, "status:      complete\n")
	return nil
}

type jsonRecord struct {
	I      int64    `json:"i"`
	TimeNS *int64   `json:"t_ns,omitempty"`
	Type   string   `json:"type"`
	Sector uint64   `json:"sector"`
	Length uint32   `json:"length"`
	Flags  []string `json:"flags,omitempty"`
	Text   string   `json:"text,omitempty"`
	Data   string   `json:"data,omitempty"`
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
			j := jsonRecord{I: rec.Index, Type: rec.Type.String(), Sector: rec.Sector, Length: rec.Length, Flags: flagNames(rec.Flags)}
			if rec.Flags&blklog.FlagHasTime != 0 {
				t := rec.TimeNS
				j.TimeNS = &t
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

// openLogArg opens the log named on the command line; "-" reads it from
// standard input, as analyze does.
func openLogArg(path string) (blklog.Reader, error) {
	if path == "-" {
		return blklog.NewReader(os.Stdin, "stdin")
	}
	return blklog.Open(path)
}
