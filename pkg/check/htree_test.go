package check

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// twoLevelHtree builds an ext4 image (1 KiB blocks, metadata_csum) whose /d holds 3000 names
// in a two-level htree, as e2fsck -D indexes it, and returns its bytes.
func twoLevelHtree(t *testing.T) []byte {
	t.Helper()
	for _, tool := range []string{"mke2fs", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	img, empty, cmds := filepath.Join(dir, "img"), filepath.Join(dir, "empty"), filepath.Join(dir, "cmds")
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-N", "6000", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	var sb strings.Builder
	sb.WriteString("mkdir d\ncd d\n")
	for i := 1; i <= 3000; i++ {
		sb.WriteString("write " + empty + " file-with-a-longish-name-" + strings.Repeat("x", i%7) + itoa(i) + "\n")
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cmds, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-w", "-f", cmds, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
	_ = exec.Command("e2fsck", "-fyD", img).Run() // exit 1: directories optimised
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn after -D: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(i int) string {
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// activeKinds is what a checker found on its starting image, by kind.
func activeKinds(c *Checker) map[string][]string {
	out := map[string][]string{}
	for _, f := range c.active {
		out[f.Kind] = append(out[f.Kind], f.Msg)
	}
	return out
}

// TestTwoLevelHtree: an htree with interior index nodes (the real captures' directories have
// one level) checks clean as e2fsck -D built it, and a swapped pair of hashes in an interior
// node is found there, naming the directory; e2fsck -fn agrees.
func TestTwoLevelHtree(t *testing.T) {
	img := twoLevelHtree(t)
	c, err := NewWith(sliceDisk(img), int64(len(img)), Options{NoRecovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if k := activeKinds(c); len(k) != 0 {
		t.Fatalf("findings on a clean two-level htree: %v", k)
	}
	fs, err := ext3fs.Open(sliceDisk(img))
	if err != nil {
		t.Fatal(err)
	}
	d := findInode(t, fs, func(in *ext3fs.Inode) bool { return in.Type() == ext3fs.TypeDir && in.IsHtree() })
	in, _ := fs.ReadInode(d)
	bs := fs.BlockSize()
	phys := map[uint64]uint64{}
	_ = fs.WalkBlocks(in, func(r ext3fs.BlockRef) error {
		if r.Kind == ext3fs.BlockData {
			phys[r.Logical] = r.Phys
		}
		return nil
	})
	root, err := ext3fs.ParseDxRoot(img[phys[0]*uint64(bs):][:bs])
	if err != nil || root.IndirectLevels != 1 {
		t.Fatalf("root: %+v %v", root, err)
	}
	node := img[phys[uint64(root.Entries[0].Block)]*uint64(bs):][:bs]
	n, err := ext3fs.ParseDxNode(node)
	if err != nil || len(n.Entries) < 3 {
		t.Fatalf("node: %+v %v", n, err)
	}
	// Swap the hashes of the node's entries 1 and 2 (bytes 8+8 and 8+16).
	h1, h2 := binary.LittleEndian.Uint32(node[16:]), binary.LittleEndian.Uint32(node[24:])
	binary.LittleEndian.PutUint32(node[16:], h2)
	binary.LittleEndian.PutUint32(node[24:], h1)
	c, err = NewWith(sliceDisk(img), int64(len(img)), Options{NoRecovery: true})
	if err != nil {
		t.Fatal(err)
	}
	k := activeKinds(c)
	t.Logf("%v", k)
	if len(k["htree"]) == 0 {
		t.Fatalf("the swapped hashes are not found: %v", k)
	}
	for _, f := range c.active {
		if f.Kind == "htree" && f.Inode != d {
			t.Errorf("finding names inode %d, the directory is %d", f.Inode, d)
		}
	}
	p := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("e2fsck", "-fn", p).CombinedOutput()
	if !strings.Contains(string(out), "Problem in HTREE directory inode "+itoa(int(d))) {
		t.Errorf("e2fsck does not see it:\n%s", out)
	}
}

type sliceDisk []byte

func (s sliceDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, s[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}
