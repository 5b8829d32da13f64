package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

// inspect and blocks on the self-mapping block (TIND pointing at a block full of its own
// number) finish at once with an error naming the loop, instead of 24 s and a billion blocks
// (inspect) or hanging at 6 GB (blocks).
func TestHostileBlockMapLoop(t *testing.T) {
	b, _ := ext3fstest.SelfMappedRoot(t)
	img := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := runCLI(t, "inspect", img)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("inspect took %v", d)
	}
	if err == nil || !strings.Contains(err.Error(), "already part of this inode's map") {
		t.Errorf("inspect: err = %v, want the map loop reported", err)
	}
	// blocks answers what can be decoded (as analyze does) and names the loop on stderr.
	var stderr bytes.Buffer
	start = time.Now()
	out, err := runCLIStderr(t, &stderr, "blocks", img, "1000")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("blocks took %v", d)
	}
	if err != nil || !strings.Contains(stderr.String(), "already part of this inode's map") || !strings.Contains(out, "1000") {
		t.Errorf("blocks: err = %v, stderr %q, out %q; want the block answered and the loop named", err, stderr.String(), out)
	}
}

// A truncated dm-log-writes log used to import to an output with an end record (complete),
// which analyze then accepted with exit 0. Now the output keeps the records before the damage,
// a mark naming it, and no end record: log info and analyze report it damaged (exit 2).
func TestImportTruncatedDMLog(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "1M").CombinedOutput(); err != nil {
		t.Skipf("mke2fs: %v\n%s", err, out)
	}
	lw := filepath.Join(dir, "w.lwlog")
	f, err := os.Create(lw)
	if err != nil {
		t.Fatal(err)
	}
	dw, err := blklog.NewDMLogWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // writes to free blocks 900..902, a flush after each
		dw.Write(&blklog.Record{Type: blklog.TypeWrite, Sector: uint64(1800 + 2*i), Length: 1024, Data: bytes.Repeat([]byte{byte(i + 1)}, 1024)})
		dw.Write(&blklog.Record{Type: blklog.TypeFlush})
	}
	dw.Close()
	f.Close()
	b, _ := os.ReadFile(lw)
	os.WriteFile(lw, b[:len(b)-512-300], 0o644) // cut inside the last write's data

	out := filepath.Join(dir, "io.log.zst")
	cmd := exec.Command(recorderBinary(t), "import", "--from", "dm-log-writes", lw, "-o", out, "--image", img)
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitDamaged || !bytes.Contains(msg, []byte("marked damaged")) {
		t.Fatalf("import: exit %d: %s", cmd.ProcessState.ExitCode(), msg)
	}
	r, err := blklog.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	var recs []blklog.Record
	for {
		rec, err := r.Next()
		if err != nil {
			var de *blklog.DamageError
			if !errors.As(err, &de) {
				t.Fatalf("after %d records: %v, want damage", len(recs), err)
			}
			break
		}
		recs = append(recs, rec)
	}
	r.Close()
	if len(recs) != 5 || recs[4].Type != blklog.TypeMark || !bytes.Contains(recs[4].Data, []byte("input damaged after 4 records")) {
		t.Fatalf("%d records, last %+v", len(recs), recs[len(recs)-1])
	}
	for _, args := range [][]string{{"log", "info", out}, {"analyze", img, out}} {
		cmd := exec.Command(recorderBinary(t), args...)
		o, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != exitDamaged || !bytes.Contains(bytes.ToLower(o), []byte("damaged")) {
			t.Errorf("%s: exit %d: %s", args[0], cmd.ProcessState.ExitCode(), o)
		}
	}
	// No temporary file is left next to the output.
	if m, _ := filepath.Glob(filepath.Join(dir, ".io.log.zst.tmp-*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}

// An import that fails for another reason (a record past the image's end) leaves no output.
func TestImportFailureLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", img, "1M").CombinedOutput(); err != nil {
		t.Skipf("mke2fs: %v\n%s", err, out)
	}
	lw := filepath.Join(dir, "w.lwlog")
	f, _ := os.Create(lw)
	dw, _ := blklog.NewDMLogWriter(f)
	dw.Write(&blklog.Record{Type: blklog.TypeWrite, Sector: 1800, Length: 512, Data: make([]byte, 512)})
	dw.Write(&blklog.Record{Type: blklog.TypeDiscard, Sector: 2040, Length: 8192})
	dw.Close()
	f.Close()
	out := filepath.Join(dir, "io.log.zst")
	cmd := exec.Command(recorderBinary(t), "import", "--from", "dm-log-writes", lw, "-o", out, "--image", img)
	msg, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !bytes.Contains(msg, []byte("beyond the end")) {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), msg)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*io.log.zst*")); len(m) != 0 {
		t.Fatalf("failed import left %v", m)
	}
}

// inspect printed guest names raw: an escape sequence reached the terminal and a newline in a
// name forged a line of the listing. Now they are quoted as the text op format quotes them.
func TestInspectQuotesNames(t *testing.T) {
	ext3fstest.Need(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	for _, n := range []string{"evil\x1b[31mred", "two\nlines", "plain"} {
		if err := os.WriteFile(filepath.Join(src, n), []byte("x"), 0o644); err != nil {
			t.Skipf("cannot make a file named %q here: %v", n, err)
		}
	}
	os.Symlink("target\x1b[0m", filepath.Join(src, "link"))
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", src, img, "1M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	out, err := runCLI(t, "inspect", img)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out, "\x1b") {
		t.Errorf("raw escape in inspect output:\n%q", out)
	}
	for _, want := range []string{`"/evil\x1b[31mred"`, `"/two\nlines"`, " /plain ", `/link -> "target\x1b[0m"`} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "lines") {
			t.Errorf("forged line %q", line)
		}
	}
	// json stays exact.
	out, err = runCLI(t, "inspect", "--format", "json", img)
	if err != nil || !strings.Contains(out, `"/evil\u001b[31mred"`) {
		t.Errorf("json: %v\n%s", err, out)
	}
}

// Distinct inodes sharing one indirect block (cross-linked maps) each look fine alone; together
// they map more blocks than the file system has, and inspect says so instead of walking every
// one of them in full (with a large shared map, a hang).
func TestInspectCrossLinkedInodes(t *testing.T) {
	ext3fstest.Need(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), []byte("x"), 0o644)
	}
	img := filepath.Join(dir, "img")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", src, img, "1M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(img)
	fsys, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	const x, data = 1000, 900
	for i := 0; i < 1024; i += 4 {
		binary.LittleEndian.PutUint32(b[x*1024+i:], data)
	}
	n := 0
	fsys.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		if in.Type() == ext3fs.TypeRegular {
			blk, off := fsys.InodeLocation(ino)
			binary.LittleEndian.PutUint32(b[int(blk)*1024+off+0x28+4*ext3fs.IndBlock:], x)
			n++
		}
		return nil
	})
	if n != 20 {
		t.Fatalf("patched %d files", n)
	}
	os.WriteFile(img, b, 0o644)
	_, err = runCLI(t, "inspect", img)
	if err == nil || !strings.Contains(err.Error(), "cross-linked block maps") {
		t.Fatalf("err = %v", err)
	}
}

// A directory entry naming an inode out of range stops inspect (exit 2, naming it); with
// --keep-going it is left out with a line on stderr, the rest of the tree is listed and the
// status is 4, a partial result.
func TestInspectLeavesOutBadEntry(t *testing.T) {
	ext3fstest.Need(t)
	b := ext3fstest.SeedImage(t, "ext2")
	fs, err := ext3fs.Open(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var patched bool
	_ = fs.Walk(func(p string, ino uint32, in *ext3fs.Inode) error {
		if p != "/d" {
			return nil
		}
		blk := uint64(in.Block[0])
		ents, _ := ext3fs.ParseDirBlock(b[blk*1024:(blk+1)*1024], true)
		for _, e := range ents {
			if e.Name == "f" {
				binary.LittleEndian.PutUint32(b[int(blk)*1024+e.Offset:], 99999)
				patched = true
			}
		}
		return nil
	})
	if !patched {
		t.Fatal("no /d/f entry in the seed image")
	}
	img := filepath.Join(t.TempDir(), "bad.img")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "inspect", img)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "/d/f") || !strings.Contains(err.Error(), "99999") || out != "" {
		t.Errorf("without --keep-going: err %v, out %q; want exit %d naming /d/f", err, out, exitUsage)
	}
	var stderr bytes.Buffer
	out, err = runCLIStderr(t, &stderr, "inspect", "--keep-going", img)
	if !errors.As(err, &ee) || ee.code != exitDamaged {
		t.Fatalf("inspect --keep-going: %v, want exit %d", err, exitDamaged)
	}
	if !strings.Contains(stderr.String(), "/d/f") || !strings.Contains(stderr.String(), "99999") {
		t.Errorf("stderr %q does not name the bad entry", stderr.String())
	}
	if !strings.Contains(out, "/x/y/z") || strings.Contains(out, "/d/f ") {
		t.Errorf("inspect output does not list the rest of the tree without /d/f:\n%s", out)
	}
}
