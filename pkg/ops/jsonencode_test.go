package ops

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// opJSON is the jsonl schema as a struct: the fields of Op in the same order, with the sector
// and byte count of I/O kept even when zero. encoding/json's output for it is what appendJSON
// must write.
type opJSON struct {
	Seq       int64   `json:"seq"`
	T         float64 `json:"t,omitempty"`
	Op        Type    `json:"op"`
	Path      string  `json:"path,omitempty"`
	To        string  `json:"to,omitempty"`
	Ino       uint32  `json:"ino,omitempty"`
	Sector    *uint64 `json:"sector,omitempty"`
	Bytes     *int64  `json:"bytes,omitempty"`
	Kind      Kind    `json:"kind,omitempty"`
	Overwrite bool    `json:"overwrite,omitempty"`
	Size      *uint64 `json:"size,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Partition int     `json:"partition,omitempty"`
}

// viewJSON is o as opJSON.
func viewJSON(o *Op) *opJSON {
	j := &opJSON{Seq: o.Seq, T: o.T, Op: o.Op, Path: o.Path, To: o.To, Ino: o.Ino,
		Kind: o.Kind, Overwrite: o.Overwrite, Size: o.Size, Reason: o.Reason, Partition: o.Partition}
	if o.Sector != 0 || o.IsIO() {
		j.Sector = &o.Sector
	}
	if o.Bytes != 0 || o.IsIO() {
		j.Bytes = &o.Bytes
	}
	return j
}

// referenceJSON encodes o with encoding/json through opJSON, HTML escaping off, no newline.
func referenceJSON(o *Op) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(viewJSON(o)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// sameAsReference fails unless appendJSON and encoding/json agree on o: the same bytes, or
// both an error.
func sameAsReference(t *testing.T, o *Op) {
	t.Helper()
	want, werr := referenceJSON(o)
	got, gerr := appendJSON([]byte("prefix"), o)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%+v: appendJSON error %v, encoding/json error %v", *o, gerr, werr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("%+v:\n got %s\nwant %s", *o, got, want)
	}
}

// Strings and numbers that take every path of the encoders: escapes by name and by code,
// HTML characters (kept), invalid UTF-8, the JavaScript line separators, multi-byte runes cut
// at the end; floats at the cutoffs of the exponent notation, negative zero, NaN and infinities.
var (
	jsonStrings = []string{"", "/", "/home/debian/test1", `a"b\c`, "tab\there", "nl\nline\r\n",
		"\b\f\x00\x01\x1f\x7f", "<a&b>", "caf\u00e9 \u65e5\u672c", "bad\xffutf8\xc3", "sep\u2028\u2029end",
		"\xe2\x80", "\U0001F600 emoji", "x\xed\xa0\x80y" /* a surrogate: invalid */}
	jsonFloats = []float64{0, math.Copysign(0, -1), 1, 0.5, 10.384311189, 66.592571032, 1e-6, 9.99e-7,
		1e-7, 1.5e-9, 1e20, 1e21, 123456789012345678901234.0, -3.25, 5e-324, math.MaxFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1)}
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	size := uint64(0)
	for _, typ := range []Type{Read, Write, Create, Delete, Move, Truncate, Anomaly, "", `we"ird`} {
		for _, s := range jsonStrings {
			for _, f := range jsonFloats {
				sameAsReference(t, &Op{Seq: 7, T: f, Op: typ, Path: s, To: s, Reason: s, Kind: Kind(s)})
			}
			sameAsReference(t, &Op{Seq: -1, Op: typ, Path: s, Ino: 1 << 31, Sector: 0, Bytes: 0, Size: &size, Overwrite: true, Partition: -2})
		}
	}
	// Every field set and unset, at random.
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) int { return rng.IntN(n) }
	for range 20000 {
		o := &Op{
			Seq:       rng.Int64() >> uint(pick(64)),
			Op:        []Type{Read, Write, Mkdir, Link, Unlink, Anomaly}[pick(6)],
			Path:      jsonStrings[pick(len(jsonStrings))],
			To:        jsonStrings[pick(len(jsonStrings))],
			Ino:       rng.Uint32() >> uint(pick(33)),
			Sector:    rng.Uint64() >> uint(pick(65)),
			Bytes:     rng.Int64() >> uint(pick(64)) * int64(1-2*pick(2)),
			Kind:      []Kind{"", KindData, KindDir, "x"}[pick(4)],
			Overwrite: pick(2) == 1,
			Reason:    jsonStrings[pick(len(jsonStrings))],
			Partition: pick(3) * (1 - 2*pick(2)),
		}
		if pick(2) == 1 {
			o.T = jsonFloats[pick(len(jsonFloats))]
		} else {
			o.T = rng.Float64() * math.Pow(10, float64(pick(50)-25))
		}
		if pick(3) == 0 {
			v := rng.Uint64() >> uint(pick(65))
			o.Size = &v
		}
		sameAsReference(t, o)
	}
}

// The writer's lines are the encoder's, one per op, and an op it cannot encode is an error.
func TestJSONLWriterLines(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "jsonl")
	if err != nil {
		t.Fatal(err)
	}
	in := []Op{{Seq: 1, T: 0.25, Op: Create, Path: "/a<b>", Ino: 12}, {Seq: 2, Op: Write, Path: "/x", Kind: KindData}}
	var want []byte
	for i := range in {
		if err := w.Write(&in[i]); err != nil {
			t.Fatal(err)
		}
		line, _ := referenceJSON(&in[i])
		want = append(append(want, line...), '\n')
	}
	if err := w.Write(&Op{Seq: 3, T: math.NaN(), Op: Read}); err == nil {
		t.Error("an op at time NaN was written")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got\n%s\nwant\n%s", buf.Bytes(), want)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for i, s := range jsonStrings {
		f.Add(int64(i), jsonFloats[i%len(jsonFloats)], s, jsonStrings[(i+1)%len(jsonStrings)], uint64(i), uint8(i))
	}
	f.Fuzz(func(t *testing.T, seq int64, tm float64, path, to string, n uint64, flags uint8) {
		o := &Op{Seq: seq, T: tm, Op: []Type{Read, Write, Move, Truncate}[flags&3], Path: path, To: to,
			Ino: uint32(n), Sector: n >> 3, Bytes: int64(n) - seq, Kind: Kind(to), Overwrite: flags&4 != 0,
			Reason: path + to, Partition: int(flags >> 4)}
		if flags&8 != 0 {
			o.Size = &n
		}
		sameAsReference(t, o)
	})
}
