package zstdblock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// decodeFrames decodes a stream of zstd frames with Decoder, as a caller that follows the
// frames does (pkg/blklog's rawFrames): headers parsed by zstdframe, raw blocks' content given
// to the history only when a block that may reach it follows, and then only its last window.
// It returns the content, or with keep false only its length.
func decodeFrames(src []byte, keep bool) ([]byte, int64, error) {
	var d Decoder
	var out []byte
	var n int64
	emit := func(p []byte) {
		n += int64(len(p))
		if keep {
			out = append(out, p...)
		}
	}
	for len(src) > 0 {
		h, ok := zstdframe.ParseHeader(src)
		if !ok || h.Dictionary() || h.Window > 1<<22 || h.Window < 0 {
			return out, n, errors.New("bad frame header")
		}
		src = src[h.Len:]
		window := int(max(h.Window, 1))
		d.Reset(window)
		maxBlock := min(window, MaxBlock)
		var pending [][]byte // raw blocks not given to the history yet
		pendingN := 0
		for {
			if len(src) < 3 {
				return out, n, errors.New("short block header")
			}
			b := zstdframe.ParseBlock([3]byte(src[:3]))
			src = src[3:]
			if b.Body() > len(src) {
				return out, n, errors.New("short block")
			}
			body := src[:b.Body()]
			src = src[b.Body():]
			if b.Size > maxBlock {
				return out, n, errors.New("block too large")
			}
			switch b.Type {
			case zstdframe.Raw:
				emit(body)
				pending = append(pending, body)
				pendingN += len(body)
				for pendingN-len(pending[0]) >= window {
					pendingN -= len(pending[0])
					pending = pending[1:]
				}
			case zstdframe.RLE, zstdframe.Compressed:
				for _, p := range pending {
					p = p[max(0, len(p)-window):]
					copy(d.Extend(len(p)), p)
				}
				pending, pendingN = pending[:0], 0
				if b.Type == zstdframe.RLE {
					emit(d.RLE(body[0], b.Size))
					break
				}
				c, err := d.Compressed(body, maxBlock)
				if err != nil {
					return out, n, err
				}
				emit(c)
			default:
				return out, n, errors.New("reserved block type")
			}
			if b.Last {
				break
			}
		}
		if h.Checksum() {
			if len(src) < 4 {
				return out, n, errors.New("short checksum")
			}
			src = src[4:]
		}
	}
	return out, n, nil
}

// corpus is content of the shapes the decoder meets: metadata-like blocks, text, runs, random.
func corpus(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.Intn(6) {
		case 0: // random bytes
			p := make([]byte, rng.Intn(5000)+1)
			rng.Read(p)
			b.Write(p)
		case 1: // a run
			b.Write(bytes.Repeat([]byte{byte(rng.Intn(256))}, rng.Intn(10000)+1))
		case 2: // text
			for i := rng.Intn(200); i >= 0; i-- {
				fmt.Fprintf(&b, "file%d/dir%d name=%x ", rng.Intn(100), rng.Intn(30), rng.Intn(1<<20))
			}
		case 3: // an earlier piece again
			if b.Len() > 0 {
				off := rng.Intn(b.Len())
				l := min(rng.Intn(20000)+1, b.Len()-off)
				b.Write(bytes.Clone(b.Bytes()[off : off+l]))
			}
		case 4: // little-endian records, as inode tables and extents hold
			for i := rng.Intn(300); i >= 0; i-- {
				var r [16]byte
				binary.LittleEndian.PutUint32(r[0:], uint32(rng.Intn(1<<16)))
				binary.LittleEndian.PutUint32(r[4:], uint32(i))
				binary.LittleEndian.PutUint64(r[8:], uint64(rng.Int63n(1<<40)))
				b.Write(r[:])
			}
		case 5: // skewed bytes: Huffman literals
			for i := rng.Intn(8000); i >= 0; i-- {
				b.WriteByte(byte(rng.ExpFloat64() * 8))
			}
		}
	}
	return b.Bytes()[:n]
}

func TestDecoderAgainstKlauspost(t *testing.T) {
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}
	for seed := int64(1); seed <= 6; seed++ {
		data := corpus(seed, 1<<20+int(seed)*7777)
		for _, lvl := range levels {
			for _, win := range []int{1 << 10, 64 << 10, 1 << 20} {
				enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithWindowSize(win), zstd.WithEncoderCRC(true))
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := decodeFrames(enc.EncodeAll(data, nil), true)
				if err != nil || !bytes.Equal(data, got) {
					t.Fatalf("seed %d level %v window %d: %v; content the same: %v", seed, lvl, win, err, bytes.Equal(data, got))
				}
			}
		}
	}
}

// TestDecoderAgainstZstdCLI decodes what the reference encoder writes, at the levels users
// compress logs with (its strategies use every literal and sequence mode klauspost's do not).
func TestDecoderAgainstZstdCLI(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd not installed")
	}
	dir := t.TempDir()
	for seed := int64(1); seed <= 3; seed++ {
		data := corpus(seed+100, 3<<20)
		in := dir + "/in"
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, lvl := range []string{"-1", "-3", "-9", "-19", "--fast=5", "--ultra -22"} {
			args := append([]string{"-q", "-f", "-c"}, strings.Fields(lvl)...)
			cmd := exec.Command("zstd", append(args, in)...)
			frame, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := decodeFrames(frame, true)
			if err != nil || !bytes.Equal(data, got) {
				t.Fatalf("seed %d zstd %s: %v; content the same: %v", seed, lvl, err, bytes.Equal(data, got))
			}
		}
	}
}

// FuzzDecoder feeds arbitrary frames: the decoder must not panic, and where it decodes a frame
// klauspost decodes too, the content must be the same.
func FuzzDecoder(f *testing.F) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(1<<10))
	for seed := int64(0); seed < 4; seed++ {
		f.Add(enc.EncodeAll(corpus(seed, 3000), nil))
	}
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.IgnoreChecksum(true), zstd.WithDecoderMaxMemory(1<<24))
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, _, err := decodeFrames(frame, true)
		if err != nil {
			return
		}
		want, werr := dec.DecodeAll(frame, nil)
		if werr != nil {
			return // the caller hands such a frame to klauspost, whose error then stands
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("content differs from klauspost's: %d bytes against %d", len(got), len(want))
		}
	})
}

// BenchmarkDecodeFile decodes $ZSTDBLOCK_BENCH_FILE (a zstd file) held in memory, this
// package's way (raw blocks lent, only the last window of a raw run added to the history)
// against klauspost's streaming decoder writing to io.Discard.
func BenchmarkDecodeFile(b *testing.B) {
	name := os.Getenv("ZSTDBLOCK_BENCH_FILE")
	if name == "" {
		b.Skip("ZSTDBLOCK_BENCH_FILE not set")
	}
	src, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("zstdblock", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for i := 0; i < b.N; i++ {
			if _, _, err := decodeFrames(src, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.IgnoreChecksum(true), zstd.WithDecoderMaxWindow(128<<20))
		for i := 0; i < b.N; i++ {
			if err := dec.Reset(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, dec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
