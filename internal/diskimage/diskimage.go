// Package diskimage opens a disk image, raw, zstd-compressed or in a format qemu-img reads
// (qcow2, qcow, QED, VMDK, VDI, VHDX, VHD), as an io.ReaderAt.
//
// The qemu-img formats are recognised by their magic and converted by `qemu-img convert -O raw`
// into an unlinked sparse temporary file (qemu.go): no Go reader of qcow2 is both well kept and
// available here, and qemu-img also follows backing files and compressed clusters.
//
// A compressed image is decompressed once at Open, one of three ways:
//   - A file of one zstd frame with a checksum, whose zero runs longer than its window make up
//     most of it (as the zstd program compresses a file-system image), is decoded by the Go
//     decoder with those runs left out as holes, never decoded, and checked against the
//     frame's checksum (holes.go): the 6 GiB bench image in 0.5 s where zstd -dc takes 1.05 s.
//   - Otherwise, when the zstd program is on PATH (see ZstdEnv) and the image is not known to
//     be under 256 MiB, the program does it (zstdexec.go): the C decoder is about 2x faster
//     than the Go one on mostly-zero images. It writes its output sparse, runs of zeros as
//     holes, into a file in memory (memfd) when the frame header gives the image's size and
//     half the available memory holds it, else into an unlinked temporary file (a pzstd file:
//     one process per core, each on a run of frames, into a file of its own); a stream it fails
//     on is decoded again by the Go decoder, which says where it is damaged.
//   - Otherwise the Go decoder decompresses it.
//
// The Go decoder keeps only the parts that are not zero: file-system images are mostly zeros,
// so a 64 MiB fixture keeps a few hundred KiB. Its goroutine picks the non-zero 4 KiB chunks
// out of its output and a second goroutine stores them (store.go): in memory up to MemoryLimit
// bytes; past that in a file in memory, chunk after chunk, when the image's size is known and
// memory holds it, else in an unlinked sparse temporary file, in which zero chunks are holes,
// so a mostly empty 6 GiB image costs a few hundred MB of disk and little memory. A file of
// several zstd frames (pzstd writes them; `zstd` writes one) is decompressed frame by frame on
// all cores.
package diskimage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/ext3replay/ext3replay/internal/zstdframe"
	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// MemoryLimit is how many bytes of non-zero content a decompressed image keeps in memory
// before it moves them to a temporary file.
var MemoryLimit int64 = 64 << 20

// Image is an opened disk image.
type Image struct {
	r    io.ReaderAt
	size int64
	f    *os.File   // raw image or spill file, closed by Close
	more []*os.File // the files of an image decompressed in parts, closed by Close
	path string
	// Compressed reports whether the image was zstd-compressed on disk.
	Compressed bool
	// Format is the qemu-img format the image was converted from ("qcow2", "vmdk", ...); empty
	// for a raw or zstd-compressed image.
	Format string
}

// Open opens path. Files starting with the zstd magic are decompressed, files in a qemu-img
// format converted (whatever their name).
func Open(path string) (*Image, error) { return OpenProgress(path, nil) }

// OpenProgress is Open that, while a compressed image is decompressed, calls progress with the
// number of compressed bytes read each time some are (from several goroutines at once; the
// total is the file's size), for a progress bar. A raw image is opened without a call.
func OpenProgress(path string, progress func(n int64)) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var head [4]byte
	n, err := f.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("diskimage: %s: %w", path, err)
	}
	if n < 4 || !isZstd(f, head) {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if format := qemuFormat(f, st.Size()); format != "" {
			f.Close()
			img, err := convertQemu(path, format)
			if err != nil {
				return nil, fmt.Errorf("diskimage: %s: %w", path, err)
			}
			return img, nil
		}
		return &Image{r: f, size: st.Size(), f: f, path: path}, nil
	}
	defer f.Close()
	img, err := decompress(f, path, progress)
	if err != nil {
		return nil, fmt.Errorf("diskimage: %s: %w", path, err)
	}
	return img, nil
}

// isZstd reports whether a file starting with head is zstd: a frame, or skippable frames
// (pzstd starts with one) followed by a frame.
func isZstd(f io.ReaderAt, head [4]byte) bool {
	var off int64
	for range 16 {
		if bytes.Equal(head[:], zstdMagic) {
			return true
		}
		if !zstdframe.IsSkippable(binary.LittleEndian.Uint32(head[:])) {
			return false
		}
		var size [4]byte
		if _, err := f.ReadAt(size[:], off+4); err != nil {
			return false
		}
		off += 8 + int64(binary.LittleEndian.Uint32(size[:]))
		if _, err := f.ReadAt(head[:], off); err != nil {
			return false
		}
	}
	return false
}

// countingFile reports the bytes read from f to progress (nil: no one).
type countingFile struct {
	f        *os.File
	progress func(int64)
}

func (c countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	if c.progress != nil && n > 0 {
		c.progress(int64(n))
	}
	return n, err
}

func decompress(f *os.File, path string, progress func(int64)) (*Image, error) {
	cf := countingFile{f: f, progress: progress}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fileSize := st.Size()
	// The error of a damaged or cut stream names how far decompression got, and the file size,
	// so a truncated copy is recognisable as one.
	zerr := func(n int64, err error) error {
		return fmt.Errorf("zstd stream (%d bytes on disk) damaged or cut short after %d decompressed bytes: %w", fileSize, n, err)
	}
	prog, named := zstdProgram()
	if !named && useHoles {
		if plan := planHoles(f, fileSize); plan != nil {
			img, read, err := decompressHoles(f, plan, path, progress)
			if err == nil || errors.Is(err, errStore) {
				return img, err
			}
			// Decode it the ordinary way, which says where a damaged stream is damaged.
			progress = skipFirst(progress, read)
			cf.progress = progress
		}
	}
	if prog != "" && (named || !goIsFaster(f, fileSize)) {
		var img *Image
		var reported int64
		if frames := scanFrames(f, fileSize); frames != nil && runtime.GOMAXPROCS(0) > 1 {
			img, reported, err = decompressProgramParts(prog, f, frames, runtime.GOMAXPROCS(0), path, progress)
		} else {
			img, reported, err = decompressProgram(prog, f, fileSize, path, progress)
		}
		if err == nil {
			return img, nil
		}
		// The Go decoder decodes what the program could not (a stream it rejects
		// wrongly, a program that is not zstd) or says where the stream is damaged.
		progress = skipFirst(progress, reported)
		cf.progress = progress
	}
	s := &store{limit: MemoryLimit}
	defer func() { s.abort() }()
	w := &seqWriter{s: s}
	// The storing goroutine stops (and stops writing to s) before s is released.
	defer func() { w.close() }()
	done := false
	if frames := scanFrames(f, fileSize); frames != nil {
		err := decodeFrames(cf, frames, w)
		switch {
		case w.werr != nil:
			return nil, w.werr
		case errors.Is(err, errFrameTooLarge):
			// Start again as one stream.
			w.close()
			s.abort()
			s = &store{limit: MemoryLimit}
			w = &seqWriter{s: s}
		case err != nil:
			return nil, zerr(w.off, err)
		default:
			done = true
		}
	}
	if !done {
		// Read at offsets, not from the file's offset, which a failed zstd program has moved.
		zr, err := zstd.NewReader(bufio.NewReaderSize(io.NewSectionReader(cf, 0, fileSize), 1<<20), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		// WriteTo hands over the decoder's own output buffers: nothing is copied but the
		// non-zero chunks kept.
		if _, err := zr.WriteTo(w); err != nil {
			if w.werr != nil {
				return nil, w.werr
			}
			return nil, zerr(w.off, err)
		}
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	return s.image(path)
}

// decompressHoles decodes the frame plan describes into a new store, leaving its long zero
// runs out (holes.go). read is how many bytes of the file it read (and told progress of).
// An error of the store wraps errStore; any other means the frame could not be decoded so.
func decompressHoles(f *os.File, plan *holePlan, path string, progress func(int64)) (img *Image, read int64, err error) {
	cf := countingFile{f: f, progress: func(n int64) {
		read += n
		if progress != nil {
			progress(n)
		}
	}}
	s := newStore(plan.size, plan.kept)
	defer func() { s.abort() }()
	w := &seqWriter{s: s}
	defer func() { w.close() }()
	if err := decodeHoles(cf, plan, w); err != nil {
		if w.werr != nil {
			return nil, read, fmt.Errorf("%w: %w", errStore, w.werr)
		}
		return nil, read, err
	}
	img, err = s.image(path)
	if err != nil {
		return nil, read, fmt.Errorf("%w: %w", errStore, err)
	}
	// The frame header, read by planHoles, was not counted.
	if rest := plan.frameLen - read; rest > 0 {
		cf.progress(rest)
	}
	return img, read, nil
}

// errStore marks a failure to store a decompressed image, as opposed to one of its stream.
var errStore = errors.New("storing the image")

// image hands the store over to a new Image.
func (s *store) image(path string) (*Image, error) {
	img := &Image{r: s, size: s.size, f: s.file, path: path, Compressed: true}
	if s.compact != nil {
		img.f = s.compact // s reads it, img closes it
	}
	if s.file != nil {
		if err := s.file.Truncate(s.size); err != nil { // materialise a trailing zero run
			return nil, fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
		}
		img.r = s.file
	}
	s.handed = true
	return img, nil
}

// zeroChunk is what an all-zero chunk is compared with: bytes.Equal is the runtime's vector
// compare, several times faster than a loop over words.
var zeroChunk [chunk]byte

// Batches of non-zero content between the decoder and the storing goroutine: batchSize bytes
// each, at most batches of them, so the content on its way is bounded.
const (
	batchSize = 1 << 20
	batches   = 4
)

// batch is non-zero content copied out of the decoder's buffers: runs of chunks, in order.
type batch struct {
	data []byte
	runs []span
}

// span is a run of non-zero content: n bytes at image offset off, at data[at:] of its batch.
type span struct {
	off   int64
	at, n int
}

// seqWriter receives a stream in order, picks out its non-zero chunks (the decoder's goroutine
// does that, in Write) and hands them in batches to a storing goroutine (a copy to memory, or
// pwrite to the spill file), so that storing overlaps decoding. Chunks adjacent in the image go
// out as one run: one pwrite.
type seqWriter struct {
	s    *store
	off  int64 // bytes received
	part []byte
	werr error // a failure of the store (the spill file), as opposed to the stream

	// sum, when set, hashes the image as stored (the storing goroutine does): summed is how
	// far, the bytes after it not yet hashed being zeros so far.
	sum    *xxh64
	summed int64

	cur     *batch
	free    chan *batch
	full    chan *batch
	done    chan error // the storing goroutine's result
	made    int        // batches allocated
	mem     []byte     // their memory
	started bool
	mu      sync.Mutex
	serr    error // the storing goroutine's first failure, seen by Write before done
}

func (w *seqWriter) Write(p []byte) (int, error) {
	if w.werr != nil {
		return 0, w.werr
	}
	n := len(p)
	if len(w.part) > 0 {
		k := min(chunk-len(w.part), len(p))
		w.part = append(w.part, p[:k]...)
		p = p[k:]
		w.off += int64(k)
		if len(w.part) == chunk {
			if !bytes.Equal(w.part, zeroChunk[:]) {
				if err := w.add(w.off-chunk, w.part); err != nil {
					return 0, err
				}
			}
			w.part = w.part[:0]
		}
	}
	whole := len(p) &^ (chunk - 1)
	for i := 0; i < whole; {
		for i < whole && bytes.Equal(p[i:i+chunk], zeroChunk[:]) {
			i += chunk
		}
		j := i
		for j < whole && !bytes.Equal(p[j:j+chunk], zeroChunk[:]) {
			j += chunk
		}
		if j > i {
			if err := w.add(w.off+int64(i), p[i:j]); err != nil {
				return 0, err
			}
		}
		i = j
	}
	w.off += int64(whole)
	if rest := p[whole:]; len(rest) > 0 {
		if w.part == nil {
			w.part = make([]byte, 0, chunk)
		}
		w.part = append(w.part, rest...)
		w.off += int64(len(rest))
	}
	return n, nil
}

// Zeros writes n zero bytes without reading any: whole chunks of them only move the offset.
func (w *seqWriter) Zeros(n int64) error {
	if len(w.part) > 0 {
		k := min(int64(chunk-len(w.part)), n)
		if _, err := w.Write(zeroChunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	whole := n &^ (chunk - 1)
	w.off += whole
	if rest := n - whole; rest > 0 {
		if _, err := w.Write(zeroChunk[:rest]); err != nil {
			return err
		}
	}
	return nil
}

// add copies the non-zero content b, at image offset off, into the current batch, sending
// batches to the storing goroutine as they fill.
func (w *seqWriter) add(off int64, b []byte) error {
	for len(b) > 0 {
		if w.cur == nil {
			if err := w.next(); err != nil {
				w.werr = err
				return err
			}
		}
		c := w.cur
		k := min(len(b), cap(c.data)-len(c.data))
		if k == 0 {
			w.send()
			continue
		}
		if r := len(c.runs) - 1; r >= 0 && c.runs[r].off+int64(c.runs[r].n) == off {
			c.runs[r].n += k
		} else {
			c.runs = append(c.runs, span{off: off, at: len(c.data), n: k})
		}
		c.data = append(c.data, b[:k]...)
		b, off = b[k:], off+int64(k)
	}
	return nil
}

// next makes w.cur an empty batch: a new one while fewer than batches exist, else one the
// storing goroutine has finished with. It fails once that goroutine has.
func (w *seqWriter) next() error {
	if !w.started {
		w.started = true
		w.free = make(chan *batch, batches)
		w.full = make(chan *batch, batches)
		w.done = make(chan error, 1)
		go w.storeBatches()
	}
	w.mu.Lock()
	err := w.serr
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if w.made < batches {
		if w.made == 0 {
			// All batches in one buffer of huge pages: fresh memory is dear (hugebuf).
			w.mem = hugebuf.Make(batches * batchSize)
		}
		w.cur = &batch{data: w.mem[w.made*batchSize : w.made*batchSize : (w.made+1)*batchSize]}
		w.made++
		return nil
	}
	w.cur = <-w.free
	return nil
}

func (w *seqWriter) send() {
	w.full <- w.cur
	w.cur = nil
}

// storeBatches stores the batches sent to it until full is closed. After a failure it only
// returns them, so that the writer never waits for a batch in vain.
func (w *seqWriter) storeBatches() {
	var err error
	// With a hash, a goroutine of its own hashes each batch once stored, a batch behind.
	var hashq chan *batch
	hashed := make(chan struct{})
	if w.sum != nil {
		hashq = make(chan *batch, batches)
		go func() {
			for b := range hashq {
				w.hash(b)
				w.free <- b
			}
			close(hashed)
		}()
	}
	for b := range w.full {
		if err == nil {
			if err = w.s.keepRuns(b.runs, b.data); err != nil {
				w.mu.Lock()
				w.serr = err
				w.mu.Unlock()
			}
		}
		if hashq != nil && err == nil {
			hashq <- b
			continue
		}
		b.data, b.runs = b.data[:0], b.runs[:0]
		w.free <- b
	}
	if hashq != nil {
		close(hashq)
		<-hashed
	}
	w.done <- err
}

// hash adds a batch's runs to w.sum, the gaps before them as zeros, and empties it.
func (w *seqWriter) hash(b *batch) {
	for _, r := range b.runs {
		w.sum.Zeros(r.off - w.summed)
		w.sum.Write(b.data[r.at : r.at+r.n])
		w.summed = r.off + int64(r.n)
	}
	b.data, b.runs = b.data[:0], b.runs[:0]
}

// close waits for the storing goroutine to store what it was sent; its failure, if any,
// becomes w.werr. It may be called more than once.
func (w *seqWriter) close() error {
	if w.started {
		close(w.full)
		if err := <-w.done; err != nil && w.werr == nil {
			w.werr = err
		}
		w.started = false
	}
	return w.werr
}

// flush stores the last, partial chunk, waits for everything to be stored and sets the image
// size.
func (w *seqWriter) flush() error {
	w.s.grow(w.off)
	if len(w.part) > 0 && !bytes.Equal(w.part, zeroChunk[:len(w.part)]) {
		if err := w.add(w.off-int64(len(w.part)), w.part); err != nil {
			w.close()
			return err
		}
	}
	if w.cur != nil && len(w.cur.runs) > 0 && w.werr == nil {
		w.send()
	}
	return w.close()
}

// ReadAt reads from the (decompressed) image.
func (m *Image) ReadAt(p []byte, off int64) (int, error) { return m.r.ReadAt(p, off) }

// Zeros reports whether the n bytes at off are known to read as zeros without reading them: a
// hole of a sparse raw image, or a run the decompressed store never stored. False says nothing.
// The checker asks it before comparing a large write with what it overwrites (pkg/check).
func (m *Image) Zeros(off, n int64) bool {
	if off < 0 || n < 0 || off+n > m.size {
		return false
	}
	switch r := m.r.(type) {
	case *os.File:
		return fileZeros(r, off, n)
	case *store:
		return r.zeros(off, n)
	}
	return false
}

// Size is the (decompressed) image size in bytes.
func (m *Image) Size() int64 { return m.size }

// Path is the path the image was opened from.
func (m *Image) Path() string { return m.path }

// Close releases the file or memory behind the image.
func (m *Image) Close() error {
	m.r = bytes.NewReader(nil)
	var err error
	if m.f != nil {
		err = m.f.Close()
		m.f = nil
	}
	for _, f := range m.more {
		if e := f.Close(); err == nil {
			err = e
		}
	}
	m.more = nil
	return err
}
