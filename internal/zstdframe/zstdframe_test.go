package zstdframe

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The headers the Go encoder writes parse to the content's size (where they give it), and their blocks, followed by
// the checksum, end exactly at the frame's end; for every kind of block. (The encoder writes no
// checksum for empty content.)
func TestFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	contents := [][]byte{{}, []byte("short"), bytes.Repeat([]byte("text "), 20000), random,
		make([]byte, 1<<20), append(bytes.Repeat([]byte{7}, 200<<10), random...)}
	for _, crc := range []bool{true, false} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(crc), zstd.WithWindowSize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range contents {
			f := enc.EncodeAll(c, nil)
			h, ok := ParseHeader(f)
			if !ok || h.Len != HeaderLen(f[4]) || h.Size != -1 && h.Size != int64(len(c)) || h.Checksum() != (crc && len(c) > 0) || h.Dictionary() {
				t.Fatalf("content %d: header %+v, %v; want size %d, checksum %v", i, h, ok, len(c), crc)
			}
			if h.Window < int64(len(c)) && h.Window < 1<<20 {
				t.Fatalf("content %d: window %d", i, h.Window)
			}
			p, kinds, content := h.Len, map[BlockType]bool{}, 0
			for {
				b := ParseBlock([3]byte(f[p:]))
				kinds[b.Type] = true
				if b.Type != Compressed {
					content += b.Size
				}
				p += 3 + b.Body()
				if b.Last {
					break
				}
			}
			if h.Checksum() {
				p += 4
			}
			if p != len(f) {
				t.Fatalf("content %d: blocks end at %d of %d", i, p, len(f))
			}
			if kinds[Reserved] || !kinds[Compressed] && content != len(c) {
				t.Fatalf("content %d: blocks %v hold %d bytes of %d", i, kinds, content, len(c))
			}
		}
	}
}

// Hand-made headers: the 2-byte content size is offset by 256, a single-segment frame's window is
// its size, and a reserved bit, a cut header or another magic are refused.
func TestParseHeader(t *testing.T) {
	magic := binary.LittleEndian.AppendUint32(nil, Magic)
	two := append(bytes.Clone(magic), 0x40, 0x58, 0x10, 0x00) // FCS 2 bytes, window 2^(10+11)
	h, ok := ParseHeader(two)
	if !ok || h.Size != 0x10+256 || h.Window != 1<<21 || h.Len != 8 || h.Single() {
		t.Fatalf("2-byte content size: %+v, %v", h, ok)
	}
	single := append(bytes.Clone(magic), 0x20, 200)
	if h, ok := ParseHeader(single); !ok || h.Size != 200 || h.Window != 200 || h.Len != 6 {
		t.Fatalf("single segment: %+v, %v", h, ok)
	}
	if _, ok := ParseHeader(append(bytes.Clone(magic), 0x08, 0x58)); ok {
		t.Fatal("reserved bit accepted")
	}
	if _, ok := ParseHeader(two[:7]); ok {
		t.Fatal("cut header accepted")
	}
	if _, ok := ParseHeader([]byte{1, 2, 3, 4, 0x20, 1}); ok {
		t.Fatal("another magic accepted")
	}
	if !IsSkippable(0x184D2A5F) || IsSkippable(Magic) {
		t.Fatal("IsSkippable")
	}
}
