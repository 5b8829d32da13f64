package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ZstdEnv names the environment variable that chooses how a .zst image is decompressed: unset
// or empty, by the Go decoder with its long zero runs left out when it has them (holes.go),
// else by the zstd program on PATH when there is one and the image is not known to be small
// (programMinSize), else by the Go decoder; "go", always by the Go decoder (zero runs left
// out or not); anything else, always by the zstd program of that name or path (by the Go
// decoder when it is not found).
const ZstdEnv = "EXT3REPLAY_ZSTD"

// zstdProgram is the zstd program to decompress with, or "" for the Go decoder, and whether
// the environment names it (then it is used whatever the image's size).
func zstdProgram() (prog string, named bool) {
	name := os.Getenv(ZstdEnv)
	switch name {
	case "go":
		return "", false
	case "":
		name = "zstd"
	default:
		named = true
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", false
	}
	return p, named
}

// programMinSize is the decompressed size from which the zstd program is used. Below it the Go
// decoder is as fast (64 MiB fixture: open in 33-48 ms in process against 66-80 ms by the
// program, whose start and output file cost more than its faster decoding saves; as whole
// commands even) and keeps the content in memory; above, the C decoder's 2x wins (the 6 GiB
// image: the Go decoder alone 3.0 s, zstd -dc 1.6 s). Roughly where decoding at the Go decoder's
// 2.2 GB/s costs 50 ms more than at the C decoder's 4.3 GB/s plus the program's own 50 ms;
// docs/performance.md has the figures.
const programMinSize = 256 << 20

// goIsFaster reports whether the Go decoder should decompress f although the program could:
// when its frame headers say its content is under programMinSize (zstd writes the size when it
// compresses a file; pzstd and a compressing pipe do not).
func goIsFaster(f io.ReaderAt, fileSize int64) bool {
	n := contentSize(f, fileSize, programMinSize)
	return n >= 0 && n < programMinSize
}

// errNoOutput is a zstd program that exited well without writing anything.
var errNoOutput = errors.New("no output")

// decompressProgram decompresses f with the zstd program prog into an unlinked temporary file
// that it writes sparse (--sparse: runs of zeros become holes, as the Go path's spill file;
// the C decoder is about 2x faster than the Go one on mostly-zero images). The program reads f
// from its own descriptor: the progress is where that descriptor's offset, which the parent
// shares, has got to. An error here is the program's, without where the stream is damaged: the
// caller decodes again with the Go decoder, which says where. reported is how many bytes
// progress was told of.
func decompressProgram(prog string, f *os.File, fileSize int64, path string, progress func(int64)) (img *Image, reported int64, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos > reported {
					progress(pos - reported)
					reported = pos
				}
			}
		}()
	}
	out, err := runProgram(prog, f, contentSize(f, fileSize, math.MaxInt64))
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, reported, err
	}
	st, err := out.Stat()
	if err == nil && st.Size() == 0 {
		// A zstd stream starts with a frame; an empty image is possible but not worth
		// trusting a program that may have done nothing.
		err = fmt.Errorf("%s: %w", prog, errNoOutput)
	}
	if err != nil {
		out.Close()
		return nil, reported, err
	}
	if progress != nil && fileSize > reported {
		progress(fileSize - reported)
		reported = fileSize
	}
	return &Image{r: out, size: st.Size(), f: out, path: path, Compressed: true}, reported, nil
}

// decompressProgramParts decompresses a file of several frames (pzstd's) with parts runs of
// the zstd program at once, each given a run of whole frames through a pipe and writing its
// own sparse temporary file: one zstd decodes on one core, and the frames do not say their
// decompressed size, so where each part's content starts is known only once the parts before
// it are decoded; the image is then the parts' files end to end. Errors and reported are
// decompressProgram's.
func decompressProgramParts(prog string, f *os.File, frames []frame, parts int, path string, progress func(int64)) (img *Image, reported int64, err error) {
	parts = min(parts, len(frames))
	var counted atomic.Int64
	cf := countingFile{f: f, progress: func(n int64) {
		counted.Add(n)
		if progress != nil {
			progress(n)
		}
	}}
	outs := make([]*os.File, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		// Part i: frames [lo, hi), from the file's start for the first (skippable frames
		// before it) to the file's end for the last.
		lo, hi := i*len(frames)/parts, (i+1)*len(frames)/parts
		start, end := frames[lo].off, int64(-1)
		if i == 0 {
			start = 0
		}
		if hi < len(frames) {
			end = frames[hi].off
		} else if st, err := f.Stat(); err == nil {
			end = st.Size()
		}
		if end < start {
			return nil, counted.Load(), fmt.Errorf("%s: frames out of order", prog)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = runProgram(prog, io.NewSectionReader(cf, start, end-start), -1) // pzstd's frames carry no size
		}()
	}
	wg.Wait()
	j := &joined{}
	fail := func(err error) (*Image, int64, error) {
		for _, o := range outs {
			if o != nil {
				o.Close()
			}
		}
		return nil, counted.Load(), err
	}
	for i, o := range outs {
		if errs[i] != nil {
			return fail(errs[i])
		}
		st, err := o.Stat()
		if err != nil {
			return fail(err)
		}
		j.files = append(j.files, o)
		j.ends = append(j.ends, j.size()+st.Size())
	}
	if j.size() == 0 {
		return fail(fmt.Errorf("%s: %w", prog, errNoOutput))
	}
	return &Image{r: j, size: j.size(), more: outs, path: path, Compressed: true}, counted.Load(), nil
}

// runProgram runs `prog -d` on in into a new file it writes sparse: a file in memory when the
// image's size is known and memory holds it (memFile), else an unlinked temporary file. On the
// 6 GiB bench image (762 MB not zero), 15 alternating runs of `blocks IMAGE.zst 0`: 1.198 s
// against 1.343 s into /tmp (on the root disk), `zstd -dc` to /dev/null 1.080 s.
func runProgram(prog string, in io.Reader, size int64) (*os.File, error) {
	out := memFile(size)
	if out == nil {
		var err error
		if out, err = os.CreateTemp("", "ext3replay-image-*.raw"); err != nil {
			return nil, fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
		}
		os.Remove(out.Name())
	}
	// --memory: the window the Go decoder accepts (its default limit is 128 MiB).
	cmd := exec.Command(prog, "-q", "-d", "-c", "--sparse", "--memory=1024MB")
	cmd.Stdin, cmd.Stdout = in, out
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Run(); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: %w: %s", prog, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// joined reads files end to end: file i holds the bytes from ends[i-1] (0 for the first) to
// ends[i].
type joined struct {
	files []*os.File
	ends  []int64
}

func (j *joined) size() int64 {
	if len(j.ends) == 0 {
		return 0
	}
	return j.ends[len(j.ends)-1]
}

func (j *joined) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("diskimage: negative offset %d", off)
	}
	n := 0
	for n < len(p) {
		o := off + int64(n)
		i := sort.Search(len(j.ends), func(i int) bool { return j.ends[i] > o })
		if i == len(j.ends) {
			return n, io.EOF
		}
		var start int64
		if i > 0 {
			start = j.ends[i-1]
		}
		want := int(min(int64(len(p)-n), j.ends[i]-o))
		k, err := j.files[i].ReadAt(p[n:n+want], o-start)
		n += k
		if k < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // a part shorter than it was
			}
			return n, err
		}
	}
	return n, nil
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	if k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// skipFirst is progress that leaves out the first n bytes reported to it (those a failed
// zstd program already reported), so that a retry does not count them twice. It may be called
// from several goroutines.
func skipFirst(progress func(int64), n int64) func(int64) {
	if progress == nil || n <= 0 {
		return progress
	}
	var mu sync.Mutex
	return func(k int64) {
		mu.Lock()
		d := min(k, n)
		n -= d
		mu.Unlock()
		if k > d {
			progress(k - d)
		}
	}
}
