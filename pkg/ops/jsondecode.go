package ops

import (
	"strconv"
	"unicode/utf8"
)

// decodeOp decodes line the quick way when it is written as appendJSON writes an op: one
// object, no whitespace but at its end, each key of the schema at most once and spelled as
// the schema spells it, strings without escapes or control characters, integers as integers,
// no null. ok is false for anything else, which parseLine then gives to encoding/json: so every
// line decodes to the same Op, or fails with the same error, as through encoding/json alone
// (FuzzDecodeOp), and reading the lines ext3replay writes takes a third of the time it did
// (BenchmarkReadJSONL, 20,000 ops: 388-469 -> 109-117 ms, 1.3M -> 0.3M allocations). Reading
// the two saved runs of the bench's large case (90,000 ops each) had been a third of diff's time.
func decodeOp(line []byte) (op Op, ok bool) {
	if len(line) < 2 || line[0] != '{' {
		return op, false
	}
	var seen uint16
	i := 1
	for {
		key, n := plainString(line[i:])
		if n == 0 || i+n >= len(line) || line[i+n] != ':' {
			return op, false
		}
		f := fieldOf(key)
		if f < 0 || seen&(1<<f) != 0 {
			return op, false
		}
		seen |= 1 << f
		i += n + 1
		v := line[i:]
		switch f {
		case fSeq, fBytes, fPartition:
			bits := 64
			if f == fPartition {
				bits = strconv.IntSize
			}
			x, n, ok := jsonInt(v, bits)
			if !ok {
				return op, false
			}
			switch f {
			case fSeq:
				op.Seq = x
			case fBytes:
				op.Bytes = x
			default:
				op.Partition = int(x)
			}
			i += n
		case fIno, fSector, fSize:
			bits := 64
			if f == fIno {
				bits = 32
			}
			x, n, ok := jsonUint(v, bits)
			if !ok {
				return op, false
			}
			switch f {
			case fIno:
				op.Ino = uint32(x)
			case fSector:
				op.Sector = x
			default:
				op.Size = &x
			}
			i += n
		case fT:
			x, n, ok := jsonFloat(v)
			if !ok {
				return op, false
			}
			op.T = x
			i += n
		case fOverwrite:
			switch {
			case len(v) >= 4 && string(v[:4]) == "true":
				op.Overwrite, n = true, 4
			case len(v) >= 5 && string(v[:5]) == "false":
				op.Overwrite, n = false, 5
			default:
				return op, false
			}
			i += n
		default:
			s, n := plainString(v)
			if n == 0 {
				return op, false
			}
			switch f {
			case fOp:
				op.Op = opType(s)
			case fKind:
				op.Kind = kindOf(s)
			case fPath:
				op.Path = string(s)
			case fTo:
				op.To = string(s)
			default:
				op.Reason = string(s)
			}
			i += n
		}
		if i >= len(line) {
			return op, false
		}
		if line[i] == '}' {
			break
		}
		if line[i] != ',' {
			return op, false
		}
		i++
	}
	for _, c := range line[i+1:] {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return op, false
		}
	}
	return op, true
}

// The schema's fields, as bits of decodeOp's seen set.
const (
	fSeq = iota
	fT
	fOp
	fPath
	fTo
	fIno
	fSector
	fBytes
	fKind
	fOverwrite
	fSize
	fReason
	fPartition
)

// fieldOf is the field named key exactly (encoding/json also takes other cases of a name: those
// lines take its path), or -1.
func fieldOf(key []byte) int {
	switch string(key) {
	case "seq":
		return fSeq
	case "t":
		return fT
	case "op":
		return fOp
	case "path":
		return fPath
	case "to":
		return fTo
	case "ino":
		return fIno
	case "sector":
		return fSector
	case "bytes":
		return fBytes
	case "kind":
		return fKind
	case "overwrite":
		return fOverwrite
	case "size":
		return fSize
	case "reason":
		return fReason
	case "partition":
		return fPartition
	}
	return -1
}

// opType is s as a Type, the vocabulary's own string when it is one (no allocation).
func opType(s []byte) Type {
	for _, t := range [...]Type{Read, Write, Create, Mkdir, Symlink, Mknod, Delete, Rmdir, Move, Link, Unlink, Truncate, Anomaly} {
		if string(t) == string(s) {
			return t
		}
	}
	return Type(s)
}

// kindOf is s as a Kind, the vocabulary's own string when it is one.
func kindOf(s []byte) Kind {
	for _, k := range [...]Kind{KindData, KindDir, KindIndirect, KindExtent, KindInode, KindBitmap, KindSuper, KindGDT,
		KindJournal, KindUnowned, KindPartitionTable, KindSwap, KindPartition, KindUnpartitioned} {
		if string(k) == string(s) {
			return k
		}
	}
	return Kind(s)
}

// plainString returns the content of the JSON string at the start of b and the length of the
// string with its quotes; n is 0 unless the string is plain: valid UTF-8, no escape and no
// control character, where its content is its bytes.
func plainString(b []byte) (s []byte, n int) {
	if len(b) == 0 || b[0] != '"' {
		return nil, 0
	}
	ascii := true
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[1:j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0
			}
			return s, j + 1
		case c == '\\' || c < 0x20:
			return nil, 0
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0
}

// jsonDigits returns the length of the JSON integer at the start of b (-?(0|[1-9][0-9]*)), or
// 0; and whether a fraction or exponent follows it (a number encoding/json would not store in
// an integer field without an error of its own).
func jsonDigits(b []byte) (n int, more bool) {
	if n < len(b) && b[n] == '-' {
		n++
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == start || (b[start] == '0' && n > start+1) {
		return 0, false
	}
	return n, n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E')
}

func jsonInt(b []byte, bits int) (int64, int, bool) {
	n, more := jsonDigits(b)
	if n == 0 || more {
		return 0, 0, false
	}
	x, err := strconv.ParseInt(string(b[:n]), 10, bits)
	return x, n, err == nil
}

func jsonUint(b []byte, bits int) (uint64, int, bool) {
	n, more := jsonDigits(b)
	if n == 0 || more || b[0] == '-' {
		return 0, 0, false
	}
	x, err := strconv.ParseUint(string(b[:n]), 10, bits)
	return x, n, err == nil
}

// jsonFloat parses the JSON number at the start of b as encoding/json does (strconv.ParseFloat
// of its text).
func jsonFloat(b []byte) (float64, int, bool) {
	n, more := jsonDigits(b)
	if n == 0 {
		return 0, 0, false
	}
	if more && b[n] == '.' {
		k := n + 1
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == n+1 {
			return 0, 0, false
		}
		n = k
	}
	if n < len(b) && (b[n] == 'e' || b[n] == 'E') {
		k := n + 1
		if k < len(b) && (b[k] == '+' || b[k] == '-') {
			k++
		}
		d := k
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		if k == d {
			return 0, 0, false
		}
		n = k
	}
	x, err := strconv.ParseFloat(string(b[:n]), 64)
	return x, n, err == nil
}
