package ops

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Clock turns an op's time (seconds from the start of the log) into the
// times the text and body formats print.
type Clock struct {
	// StartUnixNS is the wall-clock start of the capture (the native log
	// header has it); 0 when unknown (dm-log-writes logs, a log on stdin).
	StartUnixNS int64
	// NoTime says the log records no time at all (dm-log-writes): every op's
	// T is 0 and only its record number orders it.
	NoTime bool
}

// TimeModes lists the values of analyze --time.
var TimeModes = []string{"none", "rel", "abs"}

// TextOptions adds a time column to the text format, as blkparse has.
type TextOptions struct {
	Time  string // "none" (the default: no column), "rel" or "abs"
	Clock *Clock // read at every line: the caller may learn NoTime after creating the writer
}

// textTimeWidth is the width of the rel column: seconds with microseconds,
// up to 99999 s aligned.
const textTimeWidth = 12

// NewTextWriter is the text format with options; NewWriter(w, "text") is
// NewTextWriter(w, TextOptions{}).
func NewTextWriter(w io.Writer, o TextOptions) (Writer, error) {
	switch o.Time {
	case "", "none":
		o.Time = "none"
	case "rel", "abs":
		if o.Clock == nil {
			o.Clock = &Clock{}
		}
		if o.Time == "abs" && o.Clock.StartUnixNS == 0 {
			return nil, fmt.Errorf("--time abs: the log has no start time (dm-log-writes logs and a log read from stdin have none); use --time rel")
		}
	default:
		return nil, fmt.Errorf("--time %q: want none, rel or abs", o.Time)
	}
	return &textWriter{w: bufio.NewWriterSize(w, 64<<10), time: o}, nil
}

// appendTime writes the time column of op: seconds from the start of the
// log ("rel", "-" when the log has no time) or the UTC wall-clock time
// ("abs", RFC 3339 with microseconds).
func appendTime(b []byte, op *Op, o TextOptions) []byte {
	switch o.Time {
	case "rel":
		if o.Clock.NoTime {
			return append(appendRight(b, "-", textTimeWidth), ' ')
		}
		return append(appendRight(b, strconv.FormatFloat(op.T, 'f', 6, 64), textTimeWidth), ' ')
	case "abs":
		return append(o.Clock.Wall(op).AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00"), ' ')
	}
	return b
}

// Wall is the wall-clock time of op, in UTC; only meaningful when
// StartUnixNS is known.
func (c *Clock) Wall(op *Op) time.Time {
	return time.Unix(0, c.StartUnixNS+int64(op.T*1e9+0.5)).UTC()
}
