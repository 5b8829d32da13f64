package ops

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends op's jsonl object (without the newline) to b, in the schema of
// docs/output-formats.md: byte for byte what encoding/json writes for the schema as a struct
// (opJSON, in the tests) with HTML escaping off, which TestAppendJSONMatchesEncodingJSON and
// FuzzAppendJSON hold it to. Written out because the reflection-driven encoder was most of the
// cost of a line: BenchmarkWrite, 20,000 ops, 0.53 us and no allocation an op against 2.2 us and
// six for encoding/json.
func appendJSON(b []byte, o *Op) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, o.Seq, 10)
	if o.T != 0 {
		if math.IsInf(o.T, 0) || math.IsNaN(o.T) {
			return b, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(o.T, 'g', -1, 64))
		}
		b = append(b, `,"t":`...)
		b = appendJSONFloat(b, o.T)
	}
	b = append(b, `,"op":`...)
	b = appendJSONString(b, string(o.Op))
	b = appendJSONField(b, `,"path":`, o.Path)
	b = appendJSONField(b, `,"to":`, o.To)
	if o.Ino != 0 {
		b = append(b, `,"ino":`...)
		b = strconv.AppendUint(b, uint64(o.Ino), 10)
	}
	isIO := o.IsIO()
	if o.Sector != 0 || isIO {
		b = append(b, `,"sector":`...)
		b = strconv.AppendUint(b, o.Sector, 10)
	}
	if o.Bytes != 0 || isIO {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, o.Bytes, 10)
	}
	b = appendJSONField(b, `,"kind":`, string(o.Kind))
	if o.Overwrite {
		b = append(b, `,"overwrite":true`...)
	}
	if o.Size != nil {
		b = append(b, `,"size":`...)
		b = strconv.AppendUint(b, *o.Size, 10)
	}
	b = appendJSONField(b, `,"reason":`, o.Reason)
	if o.Partition != 0 {
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(o.Partition), 10)
	}
	return append(b, '}'), nil
}

// appendJSONField appends key and v as a JSON string, or nothing when v is empty (omitempty).
func appendJSONField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(append(b, key...), v)
}

// appendJSONFloat writes f as encoding/json does (ES6 number formatting): positional
// notation from 1e-6 to 1e21, exponent notation outside it with the exponent unpadded.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString writes s as a JSON string the way encoding/json does without HTML escaping:
// '"', '\\' and control characters escaped (\b \f \n \r \t by name, the others as \u00XX),
// invalid UTF-8 as \ufffd, U+2028 and U+2029 as escapes, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
