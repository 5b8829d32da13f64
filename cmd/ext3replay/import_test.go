package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ext3replay/ext3replay/pkg/blklog"
)

func readRecords(t *testing.T, path string) (blklog.Header, []blklog.Record) {
	t.Helper()
	r, err := blklog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []blklog.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), out
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.Data = bytes.Clone(rec.Data)
		out = append(out, rec)
	}
}

// A blklogwrites capture made by QEMU, imported: same records as reading the
// dm-log-writes file directly, and the image identity recorded.
func TestImportDMLogWrites(t *testing.T) {
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not installed (apt-get install qemu-utils)")
	}
	dir := t.TempDir()
	basePath := filepath.Join(dir, "base.img")
	base := writeBase(t, basePath, 2<<20)
	run := filepath.Join(dir, "run.img")
	os.WriteFile(run, base, 0o644)
	lw := filepath.Join(dir, "w.lwlog")
	os.WriteFile(lw, nil, 0o644)
	spec := fmt.Sprintf(`json:{"driver":"blklogwrites","file":{"driver":"file","filename":%q},"log":{"driver":"file","filename":%q},"log-sector-size":512}`, run, lw)
	if out, err := exec.Command("qemu-io", spec, "-c", "write -P 0xab 0 64k", "-c", "flush",
		"-c", "write -z 1M 64k", "-c", "discard 1536k 4k").CombinedOutput(); err != nil {
		t.Skipf("qemu-io blklogwrites: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "io.log.zst")
	if b, err := exec.Command(recorderBinary(t), "import", "--from", "dm-log-writes", lw, "-o", out, "--image", basePath).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, b)
	}
	_, want := readRecords(t, lw)
	h, got := readRecords(t, out)
	if len(got) != len(want) || len(got) < 4 {
		t.Fatalf("%d records imported, %d in the input", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Sector != w.Sector || g.Length != w.Length || g.Flags != w.Flags || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("record %d: %+v, want %+v", i, g, w)
		}
	}
	if err := blklog.CheckImageFull(h, bytes.NewReader(base), int64(len(base))); err != nil {
		t.Fatal(err)
	}
	final, _ := os.ReadFile(run)
	img, _, err := applyLog(t, out, base)
	if err != nil || !bytes.Equal(img, final) {
		t.Fatalf("base + imported log differs from QEMU's final image (%v)", err)
	}
	// The wrong image is refused by CheckImage.
	other := bytes.Clone(base)
	other[1024] ^= 0xff
	if err := blklog.CheckImage(h, bytes.NewReader(other), int64(len(other))); err == nil {
		t.Fatal("CheckImage accepted another image")
	}
	// A native log is not dm-log-writes.
	if b, err := exec.Command(recorderBinary(t), "import", "--from", "dm-log-writes", out, "-o", filepath.Join(dir, "x.zst")).CombinedOutput(); err == nil {
		t.Fatalf("importing a native log as dm-log-writes succeeded: %s", b)
	}
}

func TestImportQEMUTrace(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "io.trace")
	os.WriteFile(trace, []byte(strings.Join([]string{
		"13800@1795727464.902507:blk_co_preadv blk 0x564f586a3360 bs 0x564f57b9d040 offset 4096 bytes 4096 flags 0x0",
		"13800@1795727464.902600:blk_co_preadv blk 0x5555 bs 0x6666 offset 0 bytes 512 flags 0x0",
		"some other QEMU message",
		"13800@1795727464.903507:blk_co_pwritev blk 0x564f586a3360 bs 0x564f57b9d040 offset 8192 bytes 1000 flags 0x10",
		"13800@1795727464.904507:blk_co_pwritev blk 0x564f586a3360 bs 0x564f57b9d040 offset 65536 bytes 4096 flags 0x2",
		"",
	}, "\n")), 0o644)
	out := filepath.Join(dir, "io.log.zst")
	b, err := exec.Command(recorderBinary(t), "import", "--from", "qemu-trace", trace, "-o", out).CombinedOutput()
	if err == nil || !bytes.Contains(b, []byte("0x564f586a3360 (3 events), 0x5555 (1 events)")) {
		t.Fatalf("several disks without --blk: %v\n%s", err, b)
	}
	if b, err := exec.Command(recorderBinary(t), "import", "--from", "qemu-trace", trace, "-o", out, "--blk", "0x564f586a3360").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	_, recs := readRecords(t, out)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	r0, r1, r2 := recs[0], recs[1], recs[2]
	if r0.Type != blklog.TypeRead || r0.Sector != 8 || r0.Length != 4096 || r0.TimeNS != 0 {
		t.Errorf("read %+v", r0)
	}
	if r1.Type != blklog.TypeWrite || r1.Sector != 16 || r1.Length != 1024 || r1.Flags&blklog.FlagNoPayload == 0 ||
		r1.Flags&blklog.FlagFUA == 0 || r1.TimeNS != 1000000 {
		t.Errorf("write %+v", r1)
	}
	if r2.Type != blklog.TypeWriteZeroes || r2.Sector != 128 {
		t.Errorf("write-zeroes %+v", r2)
	}
	// log cat --format jsonl shows the flags.
	js, err := exec.Command(recorderBinary(t), "log", "cat", "--format", "jsonl", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(js)), "\n")
	var j struct {
		Type  string   `json:"type"`
		Flags []string `json:"flags"`
	}
	if len(lines) != 3 || json.Unmarshal([]byte(lines[1]), &j) != nil || j.Type != "write" || strings.Join(j.Flags, ",") != "fua,no-payload" {
		t.Fatalf("jsonl: %s", js)
	}
}

// log cat and log info on a damaged log print what precedes the damage and
// exit with status 2.
func TestLogCommandsDamaged(t *testing.T) {
	p := truncatedLog(t)
	cmd := exec.Command(recorderBinary(t), "log", "cat", p)
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != exitDamaged || strings.Count(string(out), "\twrite\t") < 9 {
		t.Fatalf("exit %d, out %s", cmd.ProcessState.ExitCode(), out)
	}
	cmd = exec.Command(recorderBinary(t), "log", "info", p)
	out, _ = cmd.Output()
	if cmd.ProcessState.ExitCode() != exitDamaged || !bytes.Contains(out, []byte("status:      DAMAGED")) {
		t.Fatalf("exit %d, out %s", cmd.ProcessState.ExitCode(), out)
	}
}

// truncatedLog writes a native log of ten one-sector writes, each in a frame of its own, and
// cuts its last three bytes: the last record is damaged, the nine before it are whole.
func truncatedLog(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "l.zst")
	w, err := blklog.Create(p, blklog.Header{Source: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.Write(&blklog.Record{Type: blklog.TypeWrite, Sector: uint64(i), Length: 512, Data: make([]byte, 512)})
		w.Flush()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// import --image stamps the output with the image's identity, so it must first check that the
// log belongs to that image: else analyze would accept the log only with the wrong image.
func TestImportRefusesOtherImage(t *testing.T) {
	needFixture(t)
	other := "../../fixtures/real/basic-ext3-1k/image.raw.zst"
	if _, err := os.Stat(other); err != nil {
		t.Skip("fixture basic-ext3-1k not present")
	}
	out := filepath.Join(t.TempDir(), "io.log.zst")
	err := runArgs(nil, nil, []string{"import", "--from", "dm-log-writes", filepath.Join(fixtureDir, "writes.lwlog.zst"), "-o", out, "--image", other}...)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !errors.Is(err, blklog.ErrImageMismatch) {
		t.Fatalf("err = %v, want an image mismatch with exit status %d", err, exitUsage)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("the mismatched output was left behind")
	}
}

// log cat - reads the log from standard input (any format blklog knows) and
// prints the same records as with the file named.
func TestLogCatStdin(t *testing.T) {
	needFixture(t)
	p := filepath.Join(fixtureDir, "writes.lwlog.zst")
	named, err := exec.Command(recorderBinary(t), "log", "cat", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(recorderBinary(t), "log", "cat", "-")
	cmd.Stdin = f
	piped, err := cmd.Output()
	if err != nil {
		t.Fatalf("log cat -: %v", err)
	}
	if len(named) == 0 || !bytes.Equal(named, piped) {
		t.Fatalf("log cat - printed %d bytes, log cat FILE %d; they differ", len(piped), len(named))
	}
	// Through a pipe too (os/exec copies a reader that is not a file into one), which arrives in
	// pieces: the reading ahead must pass them on whole and in order.
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(recorderBinary(t), "log", "cat", "-")
	cmd.Stdin = iotest.HalfReader(bytes.NewReader(data))
	if piped, err = cmd.Output(); err != nil || !bytes.Equal(named, piped) {
		t.Fatalf("log cat - from a pipe: %v; %d bytes printed, %d with the file named", err, len(piped), len(named))
	}
}

// The input's format is detected when --from is omitted (blklog.Detect, the one registry of
// formats); --from blklogwrites is QEMU's name for dm-log-writes; a native log needs no import.
func TestImportDetectsFormat(t *testing.T) {
	needFixture(t)
	dir := t.TempDir()
	lw := filepath.Join(fixtureDir, "writes.lwlog.zst")
	var outs []string
	for i, args := range [][]string{{"import", lw}, {"import", "--from", "blklogwrites", lw}} {
		out := filepath.Join(dir, fmt.Sprintf("io%d.log.zst", i))
		if b, err := exec.Command(recorderBinary(t), append(args, "-o", out)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, b)
		}
		b, err := exec.Command(recorderBinary(t), "log", "cat", out).Output()
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(b))
	}
	if outs[0] != outs[1] || len(outs[0]) == 0 {
		t.Error("import without --from differs from --from blklogwrites")
	}
	cmd := exec.Command(recorderBinary(t), "import", filepath.Join(fixtureDir, "io.log.zst"), "-o", filepath.Join(dir, "x.zst"))
	if b, err := cmd.CombinedOutput(); err == nil || cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(b), "not a dm-log-writes log nor a QEMU trace") {
		t.Errorf("import of a native log: %v\n%s", err, b)
	}
}
