// Package ext3fstest builds small ext2/3/4 images with mke2fs -d from a generated tree and
// queries them with debugfs, so tests can compare this module's readers with e2fsprogs.
package ext3fstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// Open opens the image file img as a file system, closed when the test ends.
func Open(tb testing.TB, img string) *ext3fs.FS {
	tb.Helper()
	f, err := os.Open(img)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	fsys, err := ext3fs.OpenWith(f, ext3fs.Options{InlineData: true})
	if err != nil {
		tb.Fatalf("Open(%s): %v", img, err)
	}
	return fsys
}

// Image describes one test image to build.
type Image struct {
	Name      string // for subtest names
	Type      string // ext2, ext3, ext4
	BlockSize int
	Rev0      bool     // revision 0 (no features at all: no filetype, no sparse_super)
	Size      string   // mke2fs size argument, default "8M"
	Extra     []string // more mke2fs arguments
}

// Standard is the image matrix the tests run over: 1K/2K/4K blocks, ext2 and ext3, a revision
// 0 image (no filetype, no sparse_super) and an ext4 image (extents, 64-bit descriptors,
// flex_bg, metadata_csum).
var Standard = []Image{
	{Name: "ext2-1k", Type: "ext2", BlockSize: 1024},
	{Name: "ext3-1k", Type: "ext3", BlockSize: 1024},
	{Name: "ext2-2k", Type: "ext2", BlockSize: 2048},
	{Name: "ext3-2k", Type: "ext3", BlockSize: 2048},
	{Name: "ext2-4k", Type: "ext2", BlockSize: 4096, Size: "16M"},
	{Name: "ext3-4k", Type: "ext3", BlockSize: 4096, Size: "16M"},
	{Name: "ext2-rev0-1k", Type: "ext2", BlockSize: 1024, Rev0: true},
	{Name: "ext4-4k", Type: "ext4", BlockSize: 4096, Size: "16M", Extra: []string{"-O", "64bit"}},
	// meta_bg: descriptor blocks live in the first, second and last group of each meta-group.
	{Name: "ext4-metabg-1k", Type: "ext4", BlockSize: 1024, Size: "16M", Extra: []string{"-O", "meta_bg,^resize_inode", "-g", "1024"}},
	// Many small groups: sparse_super backups in groups 1, 3, 5, 7, 9, 25, 27.
	{Name: "ext3-1k-groups", Type: "ext3", BlockSize: 1024, Size: "32M", Extra: []string{"-g", "1024"}},
}

// Ext4 is the ext4 matrix of the checksum and ext4-layout tests: mkfs.ext4 as Debian 12 makes it
// (the /etc/mke2fs.conf ext4 features: extent, huge_file, flex_bg, metadata_csum, 64bit,
// dir_nlink, extra_isize) on 4K and 1K blocks, the same with orphan_file and large_dir, a
// meta_bg layout, and gdt_csum (uninit_bg, crc16 descriptors) without metadata_csum. It is kept
// apart from Standard, which other packages' tests iterate.
var Ext4 = []Image{
	{Name: "ext4-default-4k", Type: "ext4", BlockSize: 4096, Size: "16M"},
	{Name: "ext4-default-1k", Type: "ext4", BlockSize: 1024, Size: "16M"},
	{Name: "ext4-orphan-largedir-4k", Type: "ext4", BlockSize: 4096, Size: "16M", Extra: []string{"-O", "orphan_file,large_dir"}},
	{Name: "ext4-metabg-flex-1k", Type: "ext4", BlockSize: 1024, Size: "16M", Extra: []string{"-O", "meta_bg,^resize_inode", "-g", "1024", "-G", "4"}},
	{Name: "ext4-inline-4k", Type: "ext4", BlockSize: 4096, Size: "16M", Extra: []string{"-O", "inline_data"}},
	{Name: "ext4-gdtcsum-4k", Type: "ext4", BlockSize: 4096, Size: "16M", Extra: []string{"-O", "^metadata_csum,uninit_bg"}},
}

// Need skips the test if e2fsprogs is not installed.
func Need(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"mke2fs", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not installed (apt-get install e2fsprogs)", p)
		}
	}
}

// HtreeDir is the directory the tree generator fills with enough entries for e2fsck -D to index.
const HtreeDir = "/many"

// FragFile is the file of the test tree whose extent tree has depth >= 1 on ext4.
const FragFile = "frag.bin"

// LongTarget is the slow-symlink target (longer than the 59 bytes a fast symlink can hold).
var LongTarget = strings.Repeat("long-target-component/", 5) + "end"

// WriteTree generates the test tree in dir. Sparse files are placed so that their blocks need
// double and triple indirect blocks for the given block size.
func WriteTree(tb testing.TB, dir string, bs int, rev0 bool) {
	tb.Helper()
	p := int64(bs / 4)
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	write := func(name string, data []byte) {
		must(os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
		must(os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	pattern := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7+int(seed)) | 1 // never a zero block: mke2fs -d skips those
		}
		return b
	}
	write("small.txt", []byte("hello, world\n"))
	write("empty", nil)
	write("dir1/dir2/dir3/deep.txt", []byte("deep\n"))
	write("smalldir/blocks.bin", pattern(3*bs, 3)) // a file with blocks in a directory small enough to be inline
	must(os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755))
	write("ind.bin", pattern((12+10)*bs+100, 1))     // direct + IND
	write("dind.bin", pattern(int(12+p+20)*bs+5, 2)) // direct + IND + DIND (dense)
	sparse := func(name string, offsets ...int64) {
		f, err := os.Create(filepath.Join(dir, name))
		must(err)
		for _, off := range offsets {
			_, err := f.WriteAt(pattern(bs, byte(off)), off*int64(bs))
			must(err)
		}
		must(f.Close())
	}
	sparse("sparse.bin", 3, 300) // a hole, then a block behind DIND at 1K
	// Every other block: 12 extents, more than the 4 of the root in i_block, so on ext4 the tree
	// has depth 1 (an index root and a leaf block).
	sparse(FragFile, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22)
	sparse("sparse-dind.bin", 12+p+2*p+7) // only DIND -> IND -> block
	if !rev0 || bs == 1024 {
		sparse("sparse-tind.bin", 0, 12+p+p*p+p+3) // TIND (4 GiB offset at 4K: needs large_file)
	}
	write("links/a", []byte("hard-linked\n"))
	must(os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "links/b")))
	must(os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "dir1/c")))
	must(os.Symlink("small.txt", filepath.Join(dir, "fastlink")))
	must(os.Symlink(LongTarget, filepath.Join(dir, "slowlink")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	_ = syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o644, 1<<8|3) // only as root
	for i := 0; i < 500; i++ {
		name := fmt.Sprintf("%s/entry-with-a-fairly-long-name-%04d", strings.TrimPrefix(HtreeDir, "/"), i)
		var data []byte
		if i%50 == 0 {
			data = pattern(100+i, byte(i))
		}
		write(name, data)
	}
	// An xattr too large for the inode goes to an xattr block (where the source fs allows it).
	_ = syscall.Setxattr(filepath.Join(dir, "small.txt"), "user.big", bytes.Repeat([]byte("x"), 600), 0)
}

// Build writes the tree and makes the image (then e2fsck -fyD, which turns the big directory
// into an htree where dir_index is on). It returns the image path and the source tree.
func Build(tb testing.TB, im Image) (img, src string) {
	tb.Helper()
	Need(tb)
	dir := tb.TempDir()
	src = filepath.Join(dir, "src")
	WriteTree(tb, src, im.BlockSize, im.Rev0)
	img = filepath.Join(dir, "fs.img")
	size := im.Size
	if size == "" {
		size = "8M"
	}
	args := []string{"-q", "-F", "-t", im.Type, "-b", strconv.Itoa(im.BlockSize), "-N", "1024"}
	if im.Rev0 {
		args = append(args, "-r", "0")
	}
	args = append(args, im.Extra...)
	args = append(args, "-d", src, img, size)
	run(tb, "mke2fs", args...)
	// e2fsck exits 1 when it changed something (the -D rehash); >= 4 is a real failure.
	cmd := exec.Command("e2fsck", "-fyD", img)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 4 || err != nil && !ok {
		tb.Fatalf("e2fsck -fyD %s: %v\n%s", img, err, out)
	}
	return img, src
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Debugfs runs the commands in one debugfs session and returns each command's output.
func Debugfs(tb testing.TB, img string, cmds []string) []string {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "cmds")
	if err := os.WriteFile(f, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	out := run(tb, "debugfs", "-f", f, img)
	parts := strings.Split(out, "debugfs: ")
	if len(parts) != len(cmds)+1 {
		tb.Fatalf("debugfs: %d outputs for %d commands:\n%s", len(parts)-1, len(cmds), out)
	}
	res := parts[1:]
	for i, p := range res {
		// Drop the echoed command line.
		if nl := strings.IndexByte(p, '\n'); nl >= 0 {
			res[i] = p[nl+1:]
		} else {
			res[i] = ""
		}
	}
	return res
}

// Ref is one block of an inode as debugfs stat lists it.
type Ref struct {
	Kind    string // "data", "ind", "dind", "tind", "extent"
	Logical int64  // -1 for map blocks
	Phys    uint64
}

var refRE = regexp.MustCompile(`\(([^)]*)\)(\[u\])?:(\d+)(?:-(\d+))?`)

// StatBlocks parses the BLOCKS: or EXTENTS: section of debugfs stat output.
func StatBlocks(tb testing.TB, stat string) []Ref {
	tb.Helper()
	i := strings.Index(stat, "BLOCKS:\n")
	if i < 0 {
		i = strings.Index(stat, "EXTENTS:\n")
	}
	if i < 0 {
		return nil
	}
	sec := stat[i:]
	if j := strings.Index(sec, "\nTOTAL:"); j >= 0 {
		sec = sec[:j]
	} else if j := strings.Index(sec, "\n\n"); j >= 0 {
		sec = sec[:j]
	}
	var out []Ref
	for _, m := range refRE.FindAllStringSubmatch(sec, -1) {
		p0, _ := strconv.ParseUint(m[3], 10, 64)
		p1 := p0
		if m[4] != "" {
			p1, _ = strconv.ParseUint(m[4], 10, 64)
		}
		lab := m[1]
		switch {
		case lab == "IND" || lab == "DIND" || lab == "TIND":
			out = append(out, Ref{strings.ToLower(lab), -1, p0})
		case strings.HasPrefix(lab, "ETB"):
			out = append(out, Ref{"extent", -1, p0})
		default:
			lo, hi := lab, lab
			if k := strings.IndexByte(lab, '-'); k >= 0 {
				lo, hi = lab[:k], lab[k+1:]
			}
			l0, err1 := strconv.ParseInt(lo, 10, 64)
			l1, err2 := strconv.ParseInt(hi, 10, 64)
			if err1 != nil || err2 != nil || l1-l0 != int64(p1-p0) {
				tb.Fatalf("cannot parse debugfs block range %q", m[0])
			}
			for k := int64(0); k <= l1-l0; k++ {
				out = append(out, Ref{"data", l0 + k, p0 + uint64(k)})
			}
		}
	}
	return out
}

// debugfs reads command files line by line into a fixed buffer; keep lines short.
const argsPerLine = 100

// batch turns one command over many arguments into several short command lines.
func batch[T any](cmd string, args []T) []string {
	var cmds []string
	for len(args) > 0 {
		n := min(len(args), argsPerLine)
		var sb strings.Builder
		sb.WriteString(cmd)
		for _, a := range args[:n] {
			fmt.Fprintf(&sb, " %v", a)
		}
		cmds = append(cmds, sb.String())
		args = args[n:]
	}
	return cmds
}

// Icheck maps each block to the inode debugfs icheck names for it (0 = "block not found").
func Icheck(tb testing.TB, img string, blocks []uint64) map[uint64]uint32 {
	tb.Helper()
	res := map[uint64]uint32{}
	for _, out := range Debugfs(tb, img, batch("icheck", blocks)) {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] == "Block" {
				continue
			}
			b, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				continue
			}
			ino, _ := strconv.ParseUint(f[1], 10, 32) // "<block not found>" parses as 0
			res[b] = uint32(ino)
		}
	}
	return res
}

// Ncheck returns every path debugfs ncheck finds for the inodes (with its "//" quirk fixed).
func Ncheck(tb testing.TB, img string, inos []uint32) map[uint32][]string {
	tb.Helper()
	res := map[uint32][]string{}
	for _, out := range Debugfs(tb, img, batch("ncheck", inos)) {
		for _, line := range strings.Split(out, "\n") {
			f := strings.SplitN(line, "\t", 2)
			if len(f) != 2 || f[0] == "Inode" {
				continue
			}
			ino, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				continue
			}
			p := f[1]
			for strings.Contains(p, "//") {
				p = strings.ReplaceAll(p, "//", "/")
			}
			res[uint32(ino)] = append(res[uint32(ino)], p)
		}
	}
	return res
}

// InUse reports, per block from first, whether debugfs testb says the block bitmap marks it used.
func InUse(tb testing.TB, img string, first, count uint64) map[uint64]bool {
	tb.Helper()
	out := Debugfs(tb, img, []string{fmt.Sprintf("testb %d %d", first, count)})[0]
	res := map[uint64]bool{}
	for _, line := range strings.Split(out, "\n") {
		var b uint64
		if _, err := fmt.Sscanf(line, "Block %d marked in use", &b); err == nil {
			res[b] = true
		} else if _, err := fmt.Sscanf(line, "Block %d not in use", &b); err == nil {
			res[b] = false
		}
	}
	return res
}

// SeedImage makes a 2 MiB image of type fsType from this tree:
//
//	/d/f (6 bytes)  /d/g (3000 bytes, also named /e/h)  /e/  /empty/  /x/y/z (a file two levels down)
func SeedImage(t testing.TB, fsType string) []byte {
	t.Helper()
	return SeedImageArgs(t, fsType)
}

// SeedImageArgs is SeedImage with extra mke2fs options.
func SeedImageArgs(t testing.TB, fsType string, extra ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "seed")
	for _, d := range []string{"d", "e", "empty", "x/y"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, b []byte) {
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("d/f", []byte("hello\n"))
	write("d/g", bytes.Repeat([]byte("g"), 3000))
	write("x/y/z", []byte("zzz\n"))
	if err := os.Link(filepath.Join(src, "d/g"), filepath.Join(src, "e/h")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img")
	args := append([]string{"-q", "-F", "-t", fsType, "-b", "1024", "-N", "64"}, extra...)
	cmd := exec.Command("mke2fs", append(args, "-d", src, img, "2M")...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DebugfsChange applies debugfs -w commands to a copy of img and returns the result; CONTENT in
// cmds names a host file of 3600 bytes of text (for write).
func DebugfsChange(t testing.TB, img []byte, cmds string) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(dir, "content")
	if err := os.WriteFile(hostFile, bytes.Repeat([]byte("new content\n"), 300), 0o644); err != nil {
		t.Fatal(err)
	}
	cmds = strings.ReplaceAll(cmds, "CONTENT", hostFile)
	cf := filepath.Join(dir, "cmds")
	if err := os.WriteFile(cf, []byte(cmds), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("debugfs", "-w", "-f", cf, p)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000100")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("debugfs: ")) && bytes.Contains(bytes.ToLower(out), []byte("error")) {
		t.Logf("debugfs output:\n%s", out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
