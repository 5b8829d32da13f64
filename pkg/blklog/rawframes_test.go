package blklog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// randomBytes is n bytes from rng: incompressible, stored by zstd as raw blocks.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// rawFramesData is content whose zstd frames hold every kind of block in every order: random
// bytes (raw blocks), text (compressed), zeros (RLE), and random bytes repeated later in the
// same frame, so that a compressed block's matches reach back into raw blocks.
func rawFramesData(scale int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(scale), 9))
	random := func(n int) []byte { return randomBytes(rng, n) }
	text := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "line %d of a text that compresses %x\n", i, rng.IntN(16))
		}
		return b.Bytes()[:n]
	}
	k := scale << 10
	r := random(200 * k)
	return [][]byte{
		random(600 * k), // raw blocks only
		text(300 * k),   // compressed blocks only
		bytes.Join([][]byte{r, r[50*k : 150*k], random(150 * k)}, nil), // raw, then matches into them
		append(make([]byte, 300*k), random(300*k)...),                  // zeros, then raw
		random(50*k + 17), // one small frame
		{},                // an empty frame
		bytes.Join([][]byte{random(130 * k), text(10 * k), random(260 * k)}, nil),
	}
}

// rawFramesStreams are zstd streams of rawFramesData as the Go encoder writes them (one frame
// per part, as the log writer's flushes make), with a skippable frame among them, and as the
// zstd program writes them when it is installed.
func rawFramesStreams(t testing.TB, scale int) map[string][]byte {
	t.Helper()
	parts := rawFramesData(scale)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(FrameBytes))
	if err != nil {
		t.Fatal(err)
	}
	var frames, skippable []byte
	for i, p := range parts {
		frames = enc.EncodeAll(p, frames)
		skippable = enc.EncodeAll(p, skippable)
		if i == 2 {
			skippable = binary.LittleEndian.AppendUint32(skippable, 0x184D2A53)
			skippable = binary.LittleEndian.AppendUint32(skippable, 5)
			skippable = append(skippable, "skip!"...)
		}
	}
	out := map[string][]byte{"go frames": frames, "skippable": skippable}
	if _, err := exec.LookPath("zstd"); err == nil {
		all := bytes.Join(parts, nil)
		for _, args := range [][]string{{"-3"}, {"-1", "--no-check", "--no-content-size"}, {"-19", "-B100000"}} {
			cmd := exec.Command("zstd", append(args, "-q", "-c")...)
			cmd.Stdin = bytes.NewReader(all)
			b, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprint("zstd ", args)] = b
		}
	}
	return out
}

// decodePlain is what the Go decoder makes of a stream, as newReader opens it: for a native log
// without checking the frames' checksums, for another (verify) checking them.
func decodePlain(b []byte, verify bool) ([]byte, error) {
	var opts []zstd.DOption
	if !verify {
		opts = append(opts, zstd.IgnoreChecksum(true))
	}
	d, err := newZstdReader(bytes.NewReader(b), opts...)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	return out, err
}

// decodeRawFrames reads the file at path through rawFrames, lending units of 4 KiB and reading
// pieces of odd sizes in turn; it returns the content, the bytes lent and the error it ended with,
// and whether the Go decoder was used.
func decodeRawFrames(t testing.TB, path string, verify bool) (out []byte, lent int, dec bool, err error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pre := prefetch(f)
	defer pre.close()
	if pre.file == nil {
		t.Fatal("not a regular file")
	}
	var opts []zstd.DOption
	if !verify {
		opts = append(opts, zstd.IgnoreChecksum(true))
	}
	r := newRawFrames(pre.input(nil), opts, verify)
	defer r.Close()
	out, _, lent, err = drainLending(t, r, true)
	return out, lent, r.dec != nil, err
}

// lendingSource is a window's source that lends its content in place: rawFrames, parFrames.
type lendingSource interface {
	io.Reader
	lender
}

// drainLending reads src to its end as a window with a payload filter does: units of 4 KiB lent
// where src lends them (checked whole), the rest read by copy, in pieces of odd sizes when keep
// (the content is then returned) or of 256 KiB. It returns the bytes read in all, those lent, and
// the error the stream ended with (nil at its clean end).
func drainLending(t testing.TB, src lendingSource, keep bool) (out []byte, total, lent int, err error) {
	t.Helper()
	buf := make([]byte, 256<<10)
	if keep {
		buf = buf[:70001]
	}
	for i := 0; ; i++ {
		if p := src.lend(64<<10, 4096); p != nil {
			if len(p)%4096 != 0 {
				t.Fatalf("lent %d bytes, not whole units", len(p))
			}
			if keep {
				out = append(out, p...)
			}
			total += len(p)
			lent += len(p)
			continue
		}
		piece := buf
		if keep {
			piece = buf[:1+i*7919%len(buf)]
		}
		n, err := src.Read(piece)
		if keep {
			out = append(out, piece[:n]...)
		}
		total += n
		if err == io.EOF {
			return out, total, lent, nil
		}
		if err != nil {
			return out, total, lent, err
		}
	}
}

// checkRawFrames fails unless rawFrames reads stream b as the Go decoder does: the same content,
// then the same error. It returns the bytes lent and whether the decoder was used.
func checkRawFrames(t testing.TB, what string, b []byte, verify bool) (int, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.zst")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want, werr := decodePlain(b, verify)
	got, lent, dec, gerr := decodeRawFrames(t, path, verify)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) || !bytes.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s (verify %v): %d bytes then %v; the decoder gives %d then %v (first difference at %d)", what, verify, len(got), gerr, len(want), werr, n)
	}
	return lent, dec
}

// TestRawFrames: every stream, whole, cut at many points and with bytes flipped, reads as the Go
// decoder reads it, and the raw blocks of the whole streams are lent, not copied.
func TestRawFrames(t *testing.T) {
	for name, b := range rawFramesStreams(t, 1) {
		lent, _ := checkRawFrames(t, name, b, false)
		t.Logf("%s: %d bytes, %d of its content lent", name, len(b), lent)
		if lent < 256<<10 { // the first part, 600 KiB of raw blocks, less the pieces read by copy
			t.Errorf("%s: only %d bytes lent: the raw blocks went through a copy", name, lent)
		}
		rng := rand.New(rand.NewPCG(uint64(len(b)), 3))
		for i := 0; i < 24; i++ {
			cut := rng.IntN(len(b))
			if i < 4 {
				cut = i // the first bytes: no frame header, or part of one
			}
			checkRawFrames(t, fmt.Sprintf("%s cut at %d", name, cut), b[:cut], i%2 == 0)
			c := bytes.Clone(b)
			at := rng.IntN(len(c))
			if i%3 == 0 {
				at = rng.IntN(min(len(c), 64)) // the first frame's header and first block header
			}
			c[at] ^= byte(1 << rng.IntN(8))
			checkRawFrames(t, fmt.Sprintf("%s flip at %d", name, at), c, i%2 == 1)
		}
	}
}

// A frame of raw blocks whose Frame_Content_Size does not match its blocks: the decoder returns
// no block that passes the size, nor a last block that misses it, and neither does rawFrames
// (FuzzRawFrames found the first version returning them all, then the decoder's error).
func TestRawFramesContentSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	content := make([]byte, 300<<10)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.EncodeAll(content, nil)
	fhd := frame[4]
	fcsBytes := [4]int{0, 2, 4, 8}[fhd>>6]
	at := 5
	if fhd&0x20 == 0 {
		at++ // the window descriptor
	}
	if fcsBytes != 4 || fhd&0x03 != 0 {
		t.Fatalf("the encoder wrote a frame header this test does not expect: % x", frame[:14])
	}
	if got := binary.LittleEndian.Uint32(frame[at:]); got != uint32(len(content)) {
		t.Fatalf("content size %d in the header, want %d", got, len(content))
	}
	for _, size := range []int{len(content) - 1, len(content) + 1, len(content) - 128<<10 - 5, 128 << 10, 1000} {
		c := bytes.Clone(frame)
		binary.LittleEndian.PutUint32(c[at:], uint32(size))
		next := enc.EncodeAll(content[:70<<10], nil) // a frame after it, which the decoder never reaches
		checkRawFrames(t, fmt.Sprintf("content size %d for %d bytes", size, len(content)), append(c, next...), size%2 == 0)
	}
}

// FuzzRawFrames: rawFrames reads any input as the Go decoder does.
func FuzzRawFrames(f *testing.F) {
	for _, b := range rawFramesStreams(f, 0) {
		f.Add(b)
	}
	small := rawFramesStreams(f, 1)["go frames"]
	f.Add(small[:len(small)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRawFrames(t, "fuzz", b, len(b)%2 == 0)
	})
}

// lending is true exactly while the content comes from raw blocks: the filter then reads a unit it
// cannot borrow alone, and elsewhere (the decoder's content) reads in whole pieces as before.
func TestRawFramesLending(t *testing.T) {
	parts := rawFramesData(1) // [0]: 600 KiB of random bytes, [1]: 300 KiB of text
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	pre := prefetchedFile(t, enc.EncodeAll(parts[1], enc.EncodeAll(parts[0], nil)))
	r := newRawFrames(pre.input(nil), []zstd.DOption{zstd.IgnoreChecksum(true)}, false)
	defer r.Close()
	var lent, copied int
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if r.lending() { // where the bytes just read came from
			lent += n
		} else {
			copied += n
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if lent != len(parts[0]) || copied != len(parts[1]) {
		t.Fatalf("%d bytes read while lending and %d not; want %d (raw blocks) and %d (text)", lent, copied, len(parts[0]), len(parts[1]))
	}
}

// A single frame mixing compressed blocks with long runs of raw ones, as `zstd` leaves a
// dm-log-writes log whose guest copied incompressible data: rawFrames decodes it all itself
// (the raw blocks lent, the others decoded by zstdblock, matches reaching back into raw blocks
// read again from the file), checks its checksum, and never starts the Go decoder; damaged, it
// ends as the Go decoder does.
func TestRawFramesMixedFrame(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 12))
	random := func(n int) []byte { return randomBytes(rng, n) }
	text := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "inode %d block %d name file-%x\n", i, rng.IntN(1<<20), rng.IntN(1<<12))
		}
		return b.Bytes()[:n]
	}
	// Raw blocks outweigh the others by far (ownRawRatio), as in a guest's large copy.
	meta, r1, r2 := text(40<<10), random(3<<20), random(2<<20)
	content := bytes.Join([][]byte{
		meta, r1, text(8 << 10),
		r1[2500<<10 : 2600<<10], // matches into the raw run just before
		r2, meta[:30<<10],       // past a raw run, matches into earlier compressed content
		make([]byte, 200<<10), // zeros: RLE or compressed
		random(600 << 10),
	}, nil)
	streams := map[string][]byte{}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true), zstd.WithWindowSize(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	streams["go"] = enc.EncodeAll(content, nil)
	if _, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command("zstd", "-3", "-q", "-c")
		cmd.Stdin = bytes.NewReader(content)
		if streams["zstd -3"], err = cmd.Output(); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range streams {
		if _, ok := zstdframe.ParseHeader(b); !ok {
			t.Fatalf("%s: no frame header", name)
		}
		lent, dec := checkRawFrames(t, name, b, true)
		if dec || lent < len(content)*2/3 {
			t.Fatalf("%s: Go decoder used %v, %d of %d bytes lent: the frame was not read here", name, dec, lent, len(content))
		}
		plain, _ := decodePlain(b, true)
		if !bytes.Equal(plain, content) {
			t.Fatalf("%s: the Go decoder's content is not the test's", name)
		}
		rng := rand.New(rand.NewPCG(uint64(len(b)), 4))
		for i := 0; i < 16; i++ {
			c := bytes.Clone(b)
			at := rng.IntN(len(c))
			c[at] ^= byte(1 << rng.IntN(8))
			checkRawFrames(t, fmt.Sprintf("%s flip at %d", name, at), c, true)
			checkRawFrames(t, fmt.Sprintf("%s cut at %d", name, at), b[:at], true)
		}
		// A flip in the frame's last bytes (its checksum, or the last raw block): the content of
		// the last block is withheld, as the decoder withholds it.
		c := bytes.Clone(b)
		c[len(c)-5] ^= 1
		checkRawFrames(t, name+" flip before the checksum", c, true)
	}
}

// BenchmarkRawFramesMixed reads one zstd frame of 48 MiB shaped like a compressed dm-log-writes
// log of a guest copying incompressible data (runs of 4 MiB of raw blocks between 16 KiB of
// text, compressed), from
// a file, checking its checksum: through rawFrames, lending what it can as the payload filter
// does, and through the Go decoder alone (the path before rawFrames read mixed frames). Compare
// the two ns/op.
func BenchmarkRawFramesMixed(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	var content []byte
	for len(content) < 48<<20 {
		run := randomBytes(rng, 4<<20)
		var meta bytes.Buffer
		for i := 0; meta.Len() < 16<<10; i++ {
			fmt.Fprintf(&meta, "inode %d block %d\n", i, rng.IntN(1<<20))
		}
		content = append(append(content, meta.Bytes()...), run...)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true), zstd.WithWindowSize(2<<20))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "mixed.zst")
	if err := os.WriteFile(path, enc.EncodeAll(content, nil), 0o644); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, viaFrames bool) {
		b.SetBytes(int64(len(content)))
		buf := make([]byte, 256<<10)
		for i := 0; i < b.N; i++ {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			pre := prefetch(f)
			var src io.Reader
			var frames *rawFrames
			if viaFrames {
				frames = newRawFrames(pre.input(nil), nil, true)
				src = frames
			} else {
				d, err := newZstdReader(pre.input(nil))
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				src = d
			}
			n := 0
			for {
				if frames != nil {
					if p := frames.lend(len(buf), 4096); p != nil {
						n += len(p)
						continue
					}
				}
				k, err := src.Read(buf)
				n += k
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != len(content) {
				b.Fatalf("%d bytes, want %d", n, len(content))
			}
			if frames != nil && frames.dec != nil {
				b.Fatal("the frame went to the Go decoder")
			}
			frames.Close()
			pre.close()
			f.Close()
		}
	}
	b.Run("rawFrames", func(b *testing.B) { read(b, true) })
	b.Run("decoder", func(b *testing.B) { read(b, false) })
}
