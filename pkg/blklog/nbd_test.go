package blklog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// makeBase writes a base image of size bytes with some non-zero content and
// zero runs (to exercise the sparse copy).
func makeBase(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rng := rand.New(rand.NewPCG(42, uint64(size)))
	for i := 0; i < size; i += 4096 {
		if (i/4096)%3 != 0 {
			continue
		}
		for j := i; j < i+4096; j++ {
			b[j] = byte(rng.IntN(256))
		}
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// replay applies every record of the log at logPath to a copy of base and
// returns it, with the records.
func replay(t *testing.T, logPath string, base []byte) ([]byte, []Record, Header) {
	t.Helper()
	r, err := Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img := bytes.Clone(base)
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", logPath, err)
		}
		if rec.Type == TypeRead && len(rec.Data) > 0 {
			// A captured read must return what the disk held at that
			// point of the log: this checks the log's order.
			off := rec.Sector * SectorSize
			if !bytes.Equal(rec.Data, img[off:off+uint64(rec.Length)]) {
				t.Fatalf("record %d: read payload at sector %d differs from base + earlier records", rec.Index, rec.Sector)
			}
		}
		if err := Apply(&rec, &memDisk{img}); err != nil {
			t.Fatal(err)
		}
		rec.Data = nil
		recs = append(recs, rec)
	}
	return img, recs, r.Header()
}

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d beyond %d-byte disk", len(p), off, len(m.b))
	}
	return copy(m.b[off:], p), nil
}

// startRecorder serves a state copy of basePath on a Unix socket in this
// process; wait returns Serve's error after the client leaves.
func startRecorder(t *testing.T, dir, basePath string, readData bool) (sock, logPath, statePath string, wait func() error) {
	t.Helper()
	sock = filepath.Join(dir, "nbd.sock")
	logPath = filepath.Join(dir, "io.log.zst")
	statePath = filepath.Join(dir, "state.img")
	st, id, err := PrepareState(basePath, statePath)
	if err != nil {
		t.Fatal(err)
	}
	lw, err := Create(logPath, Header{DiskSize: id.Size, Image: id, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			done <- err
			return
		}
		rec := &Recorder{State: st, Size: int64(id.Size), Log: lw, ReadData: readData}
		err = rec.Serve(c)
		c.Close()
		if e := lw.Close(); err == nil {
			err = e
		}
		st.Close()
		done <- err
	}()
	return sock, logPath, statePath, func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			ln.Close()
			return errors.New("recorder did not finish")
		}
	}
}

func needQemuIO(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (apt-get install qemu-utils): skipping the test against QEMU's NBD client")
	}
}

// QEMU's own NBD client (qemu-io) against the recorder: the state file must
// equal the base with the log applied, byte for byte, and what qemu-io read
// back must match what it wrote (qemu-io checks -P patterns itself).
func TestRecorderWithQemuIO(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := makeBase(t, basePath, 8<<20)
	sock, logPath, statePath, wait := startRecorder(t, dir, basePath, true)
	cmds := []string{
		"write -P 0xab 0 64k",
		"flush",
		"read -P 0xab 0 64k",
		"write -P 0x11 1M 4k",
		"write -P 0x12 -f 2M 128k", // FUA
		"write -z 3M 64k",
		"discard 4M 64k",
		"aio_write -P 0x21 5M 4k",
		"aio_write -P 0x22 5000k 4k",
		"aio_flush",
		"read -P 0x21 5M 4k",
		"read -P 0 3M 64k",
		"read -P 0 4M 64k",
		"write -P 0x33 8380416 8k", // the last 8 KiB of the disk
		"flush",
	}
	args := []string{"-f", "raw", "nbd+unix:///?socket=" + sock}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", args...).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("failed")) || bytes.Contains(out, []byte("error")) {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	if err := wait(); err != nil {
		t.Fatalf("recorder: %v", err)
	}
	img, recs, h := replay(t, logPath, base)
	state, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, state) {
		t.Fatal("state file differs from base + log")
	}
	if got, _ := os.ReadFile(basePath); !bytes.Equal(got, base) {
		t.Fatal("base image was modified")
	}
	if err := CheckImageFull(h, bytes.NewReader(base), int64(len(base))); err != nil {
		t.Fatalf("log header does not identify the base: %v", err)
	}
	counts := map[Type]int{}
	fua := 0
	for _, r := range recs {
		counts[r.Type]++
		if r.Flags&FlagFUA != 0 && r.Type == TypeWrite && r.Sector == 2<<20/SectorSize {
			fua++
		}
	}
	if counts[TypeWrite] < 6 || counts[TypeFlush] < 2 || counts[TypeRead] < 4 || counts[TypeWriteZeroes] < 1 || counts[TypeDiscard] < 1 {
		t.Fatalf("record counts %v", counts)
	}
	if fua == 0 {
		t.Error("the FUA write lost its flag")
	}
	// The expected writes are really there: spot-check contents.
	if state[1<<20] != 0x11 || state[8380416+100] != 0x33 || state[3<<20] != 0 {
		t.Error("state file lacks the written patterns")
	}
}

// qemu-img convert streams a whole image through the recorder.
func TestRecorderQemuImgConvert(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := makeBase(t, basePath, 4<<20)
	src := filepath.Join(dir, "src.img")
	want := makeBase(t, src, 4<<20)
	for i := range want {
		want[i] ^= 0x5a
	}
	os.WriteFile(src, want, 0o644)
	sock, logPath, statePath, wait := startRecorder(t, dir, basePath, false)
	out, err := exec.Command("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, "nbd+unix:///?socket="+sock).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	if err := wait(); err != nil {
		t.Fatalf("recorder: %v", err)
	}
	img, _, _ := replay(t, logPath, base)
	state, _ := os.ReadFile(statePath)
	if !bytes.Equal(state, want) || !bytes.Equal(img, want) {
		t.Fatal("after convert, state file / replayed log differ from the source image")
	}
}

// QEMU's blklogwrites driver writes dm-log-writes: replaying it onto the
// base gives the final image.
func TestBlkLogWritesCapture(t *testing.T) {
	needQemuIO(t)
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := makeBase(t, basePath, 4<<20)
	run := filepath.Join(dir, "run.img")
	os.WriteFile(run, base, 0o644)
	lw := filepath.Join(dir, "w.lwlog")
	os.WriteFile(lw, nil, 0o644)
	spec := fmt.Sprintf(`json:{"driver":"blklogwrites","file":{"driver":"file","filename":%q},"log":{"driver":"file","filename":%q},"log-sector-size":512,"log-super-update-interval":1}`, run, lw)
	out, err := exec.Command("qemu-io", spec,
		"-c", "write -P 0xab 0 64k", "-c", "flush", "-c", "write -z 1M 64k",
		"-c", "write -P 3 4096 512", "-c", "aio_write -P 4 2M 8k", "-c", "aio_flush").CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("failed")) {
		t.Skipf("qemu-io with blklogwrites unavailable: %v\n%s", err, out)
	}
	img, recs, h := replay(t, lw, base)
	if h.Format != FormatDMLogWrites {
		t.Fatalf("format %s", h.Format)
	}
	final, _ := os.ReadFile(run)
	if !bytes.Equal(img, final) {
		t.Fatal("base + dm-log-writes log differs from the final image")
	}
	if len(recs) < 5 {
		t.Fatalf("%d records", len(recs))
	}
}

// nbdClient is a minimal client for protocol edge cases QEMU never sends.
type nbdClient struct {
	t *testing.T
	c net.Conn
}

func (c *nbdClient) send(b ...[]byte) {
	for _, p := range b {
		if _, err := c.c.Write(p); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *nbdClient) recv(n int) []byte {
	b := make([]byte, n)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c.c, b); err != nil {
		c.t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

func (c *nbdClient) option(opt uint32, data []byte) (typ uint32, payload []byte) {
	be := binary.BigEndian
	h := make([]byte, 16)
	be.PutUint64(h, nbdOptMagic)
	be.PutUint32(h[8:], opt)
	be.PutUint32(h[12:], uint32(len(data)))
	c.send(h, data)
	return c.reply(opt)
}

// reply reads one more option reply.
func (c *nbdClient) reply(opt uint32) (typ uint32, payload []byte) {
	be := binary.BigEndian
	r := c.recv(20)
	if be.Uint64(r) != nbdRepMagic || be.Uint32(r[8:]) != opt {
		c.t.Fatalf("bad option reply % x", r)
	}
	return be.Uint32(r[12:]), c.recv(int(be.Uint32(r[16:])))
}

func (c *nbdClient) request(typ, flags uint16, off uint64, length uint32, data []byte) uint32 {
	be := binary.BigEndian
	h := make([]byte, 28)
	be.PutUint32(h, nbdRequestMagic)
	be.PutUint16(h[4:], flags)
	be.PutUint16(h[6:], typ)
	be.PutUint64(h[8:], 0xfeedface)
	be.PutUint64(h[16:], off)
	be.PutUint32(h[24:], length)
	c.send(h, data)
	r := c.recv(16)
	if be.Uint32(r) != nbdSimpleReplyMagic || be.Uint64(r[8:]) != 0xfeedface {
		c.t.Fatalf("bad reply % x", r)
	}
	return be.Uint32(r[4:])
}

func TestRecorderProtocol(t *testing.T) {
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := makeBase(t, basePath, 1<<20)
	sock, logPath, _, wait := startRecorder(t, dir, basePath, false)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &nbdClient{t, conn}
	be := binary.BigEndian
	g := c.recv(18)
	if be.Uint64(g) != nbdMagic || be.Uint64(g[8:]) != nbdOptMagic || be.Uint16(g[16:]) != nbdFlagFixedNewstyle|nbdFlagNoZeroes {
		t.Fatalf("greeting % x", g)
	}
	c.send([]byte{0, 0, 0, nbdFlagFixedNewstyle | nbdFlagNoZeroes})
	if typ, _ := c.option(nbdOptStructuredReply, nil); typ != nbdRepErrUnsup {
		t.Fatalf("structured reply option answered %#x, want NBD_REP_ERR_UNSUP", typ)
	}
	if typ, _ := c.option(10, []byte{0, 0, 0, 0, 0, 0, 0, 0}); typ != nbdRepErrUnsup { // SET_META_CONTEXT
		t.Fatalf("meta context answered %#x", typ)
	}
	if typ, _ := c.option(nbdOptGo, []byte{0, 0, 0}); typ != nbdRepErrInvalid {
		t.Fatalf("malformed GO answered %#x", typ)
	}
	// INFO, then GO, asking for block sizes.
	req := []byte{0, 0, 0, 0, 0, 1, 0, nbdInfoBlockSize}
	for _, opt := range []uint32{nbdOptInfo, nbdOptGo} {
		typ, p := c.option(opt, req)
		if typ != nbdRepInfo || be.Uint16(p) != nbdInfoExport || be.Uint64(p[2:]) != 1<<20 {
			t.Fatalf("info export: %#x % x", typ, p)
		}
		flags := be.Uint16(p[10:])
		if flags&nbdTFlagSendFlush == 0 || flags&nbdTFlagSendFUA == 0 {
			t.Fatalf("transmission flags %#x lack SEND_FLUSH/SEND_FUA", flags)
		}
		typ, p = c.reply(opt)
		if typ != nbdRepInfo || be.Uint16(p) != nbdInfoBlockSize || be.Uint32(p[2:]) != SectorSize {
			t.Fatalf("block size info: %#x % x", typ, p)
		}
		if typ, _ := c.reply(opt); typ != nbdRepAck {
			t.Fatalf("no ack: %#x", typ)
		}
	}
	// Transmission.
	data := bytes.Repeat([]byte{7}, 4096)
	if e := c.request(nbdCmdWrite, nbdCmdFlagFUA, 8192, 4096, data); e != 0 {
		t.Fatalf("write: errno %d", e)
	}
	if e := c.request(nbdCmdRead, 0, 100, 512, nil); e != nbdEINVAL {
		t.Fatalf("unaligned read: errno %d, want EINVAL", e)
	}
	if e := c.request(nbdCmdRead, 0, 1<<20-512, 1024, nil); e != nbdEINVAL {
		t.Fatalf("read past the end: errno %d, want EINVAL", e)
	}
	if e := c.request(nbdCmdWrite, 0, 1<<20, 512, make([]byte, 512)); e != nbdEINVAL {
		t.Fatalf("write past the end: errno %d, want EINVAL", e)
	}
	if e := c.request(nbdCmdRead, 0, 8192, 4096, nil); e != 0 {
		t.Fatalf("read: errno %d", e)
	}
	if got := c.recv(4096); !bytes.Equal(got, data) {
		t.Fatal("read returned other data than written")
	}
	if e := c.request(nbdCmdFlush, 0, 0, 0, nil); e != 0 {
		t.Fatalf("flush: errno %d", e)
	}
	if e := c.request(7, 0, 0, 512, nil); e != nbdEINVAL { // BLOCK_STATUS, not negotiated
		t.Fatalf("block status: errno %d", e)
	}
	h := make([]byte, 28)
	be.PutUint32(h, nbdRequestMagic)
	be.PutUint16(h[6:], nbdCmdDisc)
	c.send(h)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	img, recs, _ := replay(t, logPath, base)
	if len(recs) != 3 || recs[0].Type != TypeWrite || recs[0].Flags&FlagFUA == 0 || recs[1].Type != TypeRead || recs[2].Type != TypeFlush {
		t.Fatalf("records %+v", recs)
	}
	if !bytes.Equal(img[8192:12288], data) {
		t.Fatal("replayed log lacks the write")
	}
}

// The state file is a sparse copy of a raw or zstd-compressed base, and the
// identity covers the decompressed content.
func TestPrepareStateZstdSparse(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 16<<20)
	copy(raw[1024:], "superblock-ish")
	copy(raw[9<<20:], "data far away")
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zpath := filepath.Join(dir, "base.img.zst")
	os.WriteFile(zpath, enc.EncodeAll(raw, nil), 0o644)
	st, id, err := PrepareState(zpath, filepath.Join(dir, "state.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want, _ := IdentifyImage(bytes.NewReader(raw), int64(len(raw)), true)
	if id != want {
		t.Fatalf("identity %+v, want %+v", id, want)
	}
	got, _ := os.ReadFile(st.Name())
	if !bytes.Equal(got, raw) {
		t.Fatal("state file differs from the decompressed base")
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(st.Name(), &sys); err == nil && sys.Blocks*512 > 4<<20 {
		t.Errorf("state file uses %d bytes on disk for 2 MiB of non-zero data: not sparse", sys.Blocks*512)
	}
	if _, _, err := PrepareState(zpath, zpath); err == nil {
		t.Fatal("PrepareState accepted the base as its own state file")
	}
}
