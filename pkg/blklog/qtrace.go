package blklog

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// QEMU trace import. Lines written by `-trace blk_co_preadv -trace
// blk_co_pwritev` (log backend), optionally prefixed by "PID@SEC.USEC:" when
// QEMU runs with -msg timestamp=on:
//
//	13800@1795727464.902507:blk_co_preadv blk 0x564f586a3360 bs 0x564f57b9d040 offset 4096 bytes 4096 flags 0x8
//
// Offsets only: writes become records with FlagNoPayload. There is no flush
// or discard event. QEMU's BdrvRequestFlags: ZERO_WRITE 0x2 (the write is a
// write-zeroes, so its content is known), FUA 0x10.
const (
	qemuReqZeroWrite = 0x2
	qemuReqFUA       = 0x10
)

// maxTraceLine bounds one trace line.
const maxTraceLine = 64 << 10

// traceEvent is one parsed blk_co_* line.
type traceEvent struct {
	write   bool
	blk     string
	offset  uint64
	bytes   uint64
	flags   uint64
	timeUS  int64 // microseconds since the epoch; -1 if absent
	lineNum int64
}

// parseTraceLine returns ok=false for lines that are not blk_co_preadv/pwritev
// events (QEMU logs other things to the same file), and an error for a
// matching line that is malformed.
func parseTraceLine(line string, num int64) (ev traceEvent, ok bool, err error) {
	ev.timeUS = -1
	ev.lineNum = num
	i := strings.Index(line, "blk_co_p")
	if i < 0 {
		return ev, false, nil
	}
	prefix, rest := line[:i], line[i:]
	name, args, _ := strings.Cut(rest, " ")
	switch name {
	case "blk_co_preadv":
	case "blk_co_pwritev":
		ev.write = true
	default:
		return ev, false, nil
	}
	if at := strings.IndexByte(prefix, '@'); at >= 0 && strings.HasSuffix(prefix, ":") {
		sec, usec, found := strings.Cut(prefix[at+1:len(prefix)-1], ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		u, err2 := strconv.ParseInt(usec, 10, 64)
		if found && err1 == nil && err2 == nil && len(usec) == 6 {
			ev.timeUS = s*1e6 + u
		}
	}
	f := strings.Fields(args)
	seen := 0
	for k := 0; k+1 < len(f); k += 2 {
		v := f[k+1]
		var perr error
		switch f[k] {
		case "blk":
			ev.blk = v
			seen |= 1
		case "offset":
			ev.offset, perr = strconv.ParseUint(v, 0, 64)
			seen |= 2
		case "bytes":
			ev.bytes, perr = strconv.ParseUint(v, 0, 64)
			seen |= 4
		case "flags":
			ev.flags, perr = strconv.ParseUint(v, 0, 64)
		}
		if perr != nil {
			return ev, false, fmt.Errorf("line %d: %s %q: %v", num, f[k], v, perr)
		}
	}
	if seen != 7 {
		return ev, false, fmt.Errorf("line %d: %s event without blk, offset and bytes: %q", num, name, line)
	}
	// The record covers whole sectors and its length must fit in 32 bits.
	if ev.offset > 1<<62 || ev.bytes > 1<<32-2*SectorSize {
		return ev, false, fmt.Errorf("line %d: request of %d bytes at byte %d out of range", num, ev.bytes, ev.offset)
	}
	return ev, true, nil
}

// ScanQEMUTrace counts the blk_co_preadv/pwritev events of a trace per
// block-backend pointer, so a caller can choose the disk.
func ScanQEMUTrace(r io.Reader) (map[string]int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxTraceLine)
	counts := map[string]int64{}
	var n int64
	for sc.Scan() {
		n++
		ev, ok, err := parseTraceLine(sc.Text(), n)
		if err != nil {
			return nil, err
		}
		if ok {
			counts[ev.blk]++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return counts, nil
}

// BlkPointers returns the keys of ScanQEMUTrace's result, busiest first.
func BlkPointers(counts map[string]int64) []string {
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if counts[ks[i]] != counts[ks[j]] {
			return counts[ks[i]] > counts[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// qtraceReader yields the events of one block backend as Records.
type qtraceReader struct {
	name string
	sc   *bufio.Scanner
	blk  string
	line int64
	n    int64
	t0   int64 // first timestamp (µs), -1 until seen
	hdr  Header
	err  error
	off  int64 // byte offset of the next line
}

// NewQEMUTraceReader reads the blk_co_preadv/pwritev events of the block
// backend blk (a pointer such as "0x564f586a3360") from a QEMU trace. Byte
// ranges are widened to whole 512-byte sectors. Writes carry no payload
// (FlagNoPayload) unless they are write-zeroes.
func NewQEMUTraceReader(r io.Reader, name, blk string) Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxTraceLine)
	return &qtraceReader{
		name: name, sc: sc, blk: blk, t0: -1,
		hdr: Header{Format: FormatQEMUTrace, Version: 1, SectorSize: SectorSize,
			Source: "QEMU trace blk_co_preadv/blk_co_pwritev, blk " + blk},
	}
}

func (q *qtraceReader) Header() Header { return q.hdr }

func (q *qtraceReader) Next() (Record, error) {
	if q.err != nil {
		return Record{}, q.err
	}
	for q.sc.Scan() {
		q.line++
		lineOff := q.off
		q.off += int64(len(q.sc.Bytes())) + 1
		ev, ok, err := parseTraceLine(q.sc.Text(), q.line)
		if err != nil {
			q.err = &DamageError{Path: q.name, Record: q.n, Offset: lineOff, Err: err}
			return Record{}, q.err
		}
		if !ok || ev.blk != q.blk {
			continue
		}
		first := ev.offset / SectorSize * SectorSize
		end := (ev.offset + ev.bytes + SectorSize - 1) / SectorSize * SectorSize // no overflow: bounded by parseTraceLine
		rec := Record{Index: q.n, Type: TypeRead, Sector: first / SectorSize, Length: uint32(end - first)}
		if ev.write {
			switch {
			case ev.flags&qemuReqZeroWrite != 0:
				rec.Type = TypeWriteZeroes
			default:
				rec.Type = TypeWrite
				rec.Flags |= FlagNoPayload
			}
			if ev.flags&qemuReqFUA != 0 {
				rec.Flags |= FlagFUA
			}
		}
		if ev.timeUS >= 0 {
			if q.t0 < 0 {
				q.t0 = ev.timeUS
				q.hdr.StartUnixNS = ev.timeUS * 1000
			}
			rec.Flags |= FlagHasTime
			rec.TimeNS = (ev.timeUS - q.t0) * 1000
		}
		q.n++
		return rec, nil
	}
	if err := q.sc.Err(); err != nil {
		q.err = &DamageError{Path: q.name, Record: q.n, Offset: q.off, Err: fmt.Errorf("line %d: %w", q.line+1, err)}
		return Record{}, q.err
	}
	q.err = io.EOF
	return Record{}, io.EOF
}

func (q *qtraceReader) Close() error { return nil }
