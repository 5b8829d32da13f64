package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ZstdEnv names the environment variable that chooses how a .zst image is decompressed: unset
// or empty, by the zstd program on PATH when there is one and the image is not known to be
// small (programMinSize), else by the Go decoder; "go", always by the Go decoder; anything
// else, always by the zstd program of that name or path (by the Go decoder when it is not
// found).
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
// decoder is as fast or faster (BenchmarkOpen, 64 MiB fixture: zst-go 38 ms, zst-program
// 88-119 ms: starting a process and writing a file cost more than the slower decoding) and
// keeps the content in memory; above, the C decoder's 2x wins (2.75 s against 1.3 s for the
// 6 GiB image). Roughly where decoding at the Go decoder's 2.2 GB/s costs 50 ms more than at
// the C decoder's 4.3 GB/s plus the program's own 50 ms.
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
// the C decoder is 2-3x faster than the Go one on mostly-zero images). The program reads f
// from its own descriptor: the progress is where that descriptor's offset, which the parent
// shares, has got to. An error here is the program's, without where the stream is damaged:
// the caller decodes again with the Go decoder, which says where.
func decompressProgram(prog string, f *os.File, fileSize int64, path string, progress func(int64)) (img *Image, reported int64, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	out, err := os.CreateTemp("", "ext3replay-image-*.raw")
	if err != nil {
		return nil, 0, fmt.Errorf("decompressing to %s: %w", os.TempDir(), err)
	}
	os.Remove(out.Name())
	ok := false
	defer func() {
		if !ok {
			out.Close()
		}
	}()
	// --memory: the window the Go decoder accepts (its default limit is 128 MiB).
	cmd := exec.Command(prog, "-q", "-d", "-c", "--sparse", "--memory=1024MB")
	cmd.Stdin, cmd.Stdout = f, out
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
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
	err = cmd.Wait()
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, reported, fmt.Errorf("%s: %w: %s", prog, err, bytes.TrimSpace(stderr.Bytes()))
	}
	st, err := out.Stat()
	if err != nil {
		return nil, reported, err
	}
	if st.Size() == 0 {
		// A zstd stream starts with a frame; an empty image is possible but not worth
		// trusting a program that may have done nothing.
		return nil, reported, fmt.Errorf("%s: %w", prog, errNoOutput)
	}
	if progress != nil && fileSize > reported {
		progress(fileSize - reported)
		reported = fileSize
	}
	ok = true
	return &Image{r: out, size: st.Size(), f: out, path: path, Compressed: true}, reported, nil
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
