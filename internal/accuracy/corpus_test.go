package accuracy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
)

// The committed corpus is checked against itself, independently of the analyzer:
//   - replaying io.log.zst (ext3replay record) and writes.lwlog.zst (QEMU blklogwrites) onto the starting image
//     gives the same final disk, since both were captured from the same run;
//   - the tree of the starting image, with the mandatory namespace lines of expected.jsonl applied in order,
//     is exactly the tree of the final disk. This proves the ground truth describes what reached the disk.

// corpusDir is fixtures/real, or EXT3REPLAY_CORPUS (live-smoke.sh points it at a fresh capture).
func corpusDir() string {
	if d := os.Getenv("EXT3REPLAY_CORPUS"); d != "" {
		return d
	}
	return "../../fixtures/real"
}

func replay(t *testing.T, base scenario.Disk, logPath string) (scenario.Disk, int) {
	t.Helper()
	disk := append(scenario.Disk(nil), base...)
	n, err := scenario.Apply(disk, logPath)
	if err != nil {
		t.Fatal(err)
	}
	return disk, n
}

// tree lists every name of the file system with its type ("d", "f", "l", ...). A partitioned
// disk's tree is its ext partitions' trees under their mount points (the scenario's --mount).
func tree(t *testing.T, disk scenario.Disk, what string, mounts map[int]string) map[string]string {
	t.Helper()
	if len(mounts) == 0 {
		return fsTree(t, disk, what, "")
	}
	tab, err := partition.Read(disk, int64(len(disk)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := map[string]string{}
	for n, dir := range mounts {
		p, ok := tab.Partition(n)
		if !ok {
			t.Fatalf("%s: no partition %d", what, n)
		}
		prefix := strings.TrimSuffix(dir, "/")
		for k, v := range fsTree(t, disk[p.Start:p.End()], fmt.Sprintf("%s partition %d", what, n), prefix) {
			out[k] = v
		}
	}
	return out
}

// fsTree is tree for one file system, its paths under prefix.
func fsTree(t *testing.T, disk scenario.Disk, what, prefix string) map[string]string {
	t.Helper()
	// The tree after journal recovery, as the next mount sees it (a disk left by a power cut, or
	// the starting image of the boot after one).
	rc, err := ext3fs.Recover(disk)
	if err != nil {
		t.Fatalf("%s: journal recovery: %v", what, err)
	}
	if rc.FastCommits > 0 {
		t.Logf("%s: %s", what, rc.Summary())
	}
	// Reading the tree only: inline_data is accepted (ext3fs.Open refuses it by default).
	fs, err := ext3fs.OpenWith(rc, ext3fs.Options{InlineData: true})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := map[string]string{}
	err = fs.Walk(func(path string, ino uint32, in *ext3fs.Inode) error {
		if path == "/" || path == "/lost+found" {
			return nil
		}
		path = prefix + path
		switch in.Type() {
		case ext3fs.TypeDir:
			out[path] = "d"
		case ext3fs.TypeRegular:
			out[path] = "f"
		case ext3fs.TypeSymlink:
			out[path] = "l"
		default:
			out[path] = "?"
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return out
}

// applyExpected plays the mandatory namespace lines on a tree.
func applyExpected(tr map[string]string, exp []Expected) error {
	for _, e := range exp {
		if e.Optional {
			continue
		}
		switch e.Op {
		case ops.Create, ops.Mkdir, ops.Symlink, ops.Mknod:
			if _, ok := tr[e.Path]; ok {
				return fmt.Errorf("%s %s: already exists", e.Op, e.Path)
			}
			tr[e.Path] = map[ops.Type]string{ops.Create: "f", ops.Mkdir: "d", ops.Symlink: "l", ops.Mknod: "?"}[e.Op]
		case ops.Delete, ops.Unlink, ops.Rmdir:
			if _, ok := tr[e.Path]; !ok {
				return fmt.Errorf("%s %s: no such name", e.Op, e.Path)
			}
			delete(tr, e.Path)
		case ops.Link:
			if _, ok := tr[e.Path]; !ok {
				return fmt.Errorf("link %s: no such name", e.Path)
			}
			tr[e.To] = tr[e.Path]
		case ops.Move:
			typ, ok := tr[e.Path]
			if !ok {
				return fmt.Errorf("move %s: no such name", e.Path)
			}
			if _, there := tr[e.To]; there != e.Overwrite {
				return fmt.Errorf("move %s -> %s: overwrite=%v but target exists=%v", e.Path, e.To, e.Overwrite, there)
			}
			delete(tr, e.Path)
			tr[e.To] = typ
			if typ == "d" { // the subtree moves along
				for p, ty := range tr {
					if strings.HasPrefix(p, e.Path+"/") {
						delete(tr, p)
						tr[e.To+strings.TrimPrefix(p, e.Path)] = ty
					}
				}
			}
		}
	}
	return nil
}

func diffTrees(want, got map[string]string) string {
	var d []string
	for p, ty := range want {
		if got[p] != ty {
			d = append(d, fmt.Sprintf("expected %s (%s), disk has %q", p, ty, got[p]))
		}
	}
	for p, ty := range got {
		if _, ok := want[p]; !ok {
			d = append(d, fmt.Sprintf("disk has %s (%s), not expected", p, ty))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

func TestCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("replays every committed capture")
	}
	dirs, _ := filepath.Glob(filepath.Join(corpusDir(), "*", "expected.jsonl"))
	if len(dirs) == 0 {
		t.Skip("no committed scenarios")
	}
	for _, ej := range dirs {
		dir := filepath.Dir(ej)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, err := os.Open(ej)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := ReadExpected(f, ej)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			base, err := scenario.StartImage(dir)
			if err != nil {
				t.Fatal(err)
			}
			var finals []scenario.Disk
			for _, ln := range []string{"io.log.zst", "writes.lwlog.zst"} {
				p := filepath.Join(dir, ln)
				if _, err := os.Stat(p); err != nil {
					continue
				}
				final, n := replay(t, base, p)
				if n == 0 {
					t.Errorf("%s: no records", ln)
				}
				finals = append(finals, final)
			}
			if len(finals) == 0 {
				t.Fatal("no log")
			}
			if len(finals) == 2 && !bytes.Equal(finals[0], finals[1]) {
				t.Error("io.log.zst and writes.lwlog.zst replay to different disks")
			}
			optional := false
			for _, e := range exp {
				optional = optional || e.Optional
			}
			if env, err := os.ReadFile(filepath.Join(dir, "scenario.env")); err == nil && strings.Contains(string(env), "\nCRASH=1") && optional {
				// After a power cut, operations never synced may or may not have reached the journal:
				// the final tree is not comparable. (Without such lines it is, after journal recovery.)
				t.Log("CRASH=1 with optional lines: final tree not compared")
				return
			}
			mounts, err := scenario.Mounts(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := tree(t, base, "starting image", mounts)
			if err := applyExpected(want, exp); err != nil {
				t.Fatalf("expected.jsonl does not apply to the starting image: %v", err)
			}
			if d := diffTrees(want, tree(t, finals[0], "final disk", mounts)); d != "" {
				t.Errorf("expected.jsonl does not explain the final disk:\n%s", d)
			}
		})
	}
}
