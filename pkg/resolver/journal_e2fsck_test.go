package resolver

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// replayLikeRecovery applies returned transactions the way e2fsck/recovery.c replays a journal
// after a crash: a block's copy in transaction T is skipped if some transaction >= T revokes it.
func replayLikeRecovery(img []byte, bs int, txs []Transaction) {
	revoked := map[uint64]uint32{}
	for _, tx := range txs {
		for _, b := range tx.Revoked {
			if r, ok := revoked[b]; !ok || tidAfter(tx.Seq, r) {
				revoked[b] = tx.Seq
			}
		}
	}
	for _, tx := range txs {
		for _, b := range tx.Blocks {
			if r, ok := revoked[b.FSBlock]; ok && !tidAfter(tx.Seq, r) {
				continue
			}
			copy(img[int(b.FSBlock)*bs:], b.Data)
		}
	}
}

func runTool(t *testing.T, ok func(code int) bool, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		if ee, isExit := err.(*exec.ExitError); !isExit || !ok(ee.ExitCode()) {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
}

func zero(code int) bool { return code == 0 }

// TestTrackerMatchesE2fsck logs transactions into real journals with debugfs (escape, revoke,
// a block re-logged after its revoke, a revoke of a block logged earlier, a transaction spanning
// several descriptor blocks, an uncommitted tail), feeds the journal to the tracker in log order
// and shuffled, replays what it returns on one copy of the image and lets e2fsck -fy replay the
// journal on another: every block the journal names must come out byte-for-byte the same.
func TestTrackerMatchesE2fsck(t *testing.T) {
	for _, tool := range []string{"mke2fs", "debugfs", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	cases := []struct {
		name string
		mkfs []string
		jo   string
	}{
		{"ext3-1k", []string{"-t", "ext3", "-b", "1024"}, ""},
		{"ext3-4k", []string{"-t", "ext3", "-b", "4096"}, ""},
		{"ext4-64bit", []string{"-t", "ext4", "-O", "64bit,^metadata_csum", "-b", "1024"}, ""},
		{"ext4-csum2", []string{"-t", "ext4", "-O", "64bit,metadata_csum", "-b", "1024"}, " -c -v 2"},
		{"ext4-csum3", []string{"-t", "ext4", "-O", "64bit,metadata_csum", "-b", "4096"}, " -c -v 3"},
	}
	if testing.Short() {
		cases = cases[:1]
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "fs.img")
			runTool(t, zero, "mke2fs", append(append([]string{"-q", "-F"}, c.mkfs...), img, "64M")...)
			bs := 1024
			if strings.Contains(strings.Join(c.mkfs, " "), "-b 4096") {
				bs = 4096
			}
			// Blocks 10000-11299 are free on every layout below (the journal and inode tables sit lower).
			// Data: 400 distinct blocks, every 50th starting with the journal magic (escaped in the log).
			data := make([]byte, 400*bs)
			for i := range data {
				data[i] = byte(i/bs*13 + i%251)
			}
			for i := 0; i < 400; i += 50 {
				binary.BigEndian.PutUint32(data[i*bs:], ext3fs.JournalMagic)
			}
			df := filepath.Join(dir, "D")
			if err := os.WriteFile(df, data, 0o644); err != nil {
				t.Fatal(err)
			}
			var big []string
			for b := 11000; b < 11300; b++ {
				big = append(big, fmt.Sprint(b))
			}
			cmds := strings.Join([]string{
				"jo" + c.jo,
				"jw -b 10000,10001,10002 " + df, // tx 1 (10000 escaped)
				"jw -r 10001",                   // tx 2: 10001 from tx 1 is not replayed
				"jw -b " + strings.Join(big, ",") + " " + df, // tx 3: several descriptors
				"jw -b 10001,10003 " + df,                    // tx 4: 10001 logged again after its revoke: replayed
				"jw -r 11005",                                // tx 5
				"jw -b 10004,11006 -c " + df,                 // tx 6: no commit, never replayed
				"jc",
			}, "\n") + "\n"
			cf := filepath.Join(dir, "cmds")
			if err := os.WriteFile(cf, []byte(cmds), 0o644); err != nil {
				t.Fatal(err)
			}
			runTool(t, zero, "debugfs", "-w", "-f", cf, img)
			jf := filepath.Join(dir, "journal")
			runTool(t, zero, "debugfs", "-R", "dump <8> "+jf, img)
			journal, err := os.ReadFile(jf)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			// e2fsck replays the journal (exit 1: file system modified).
			runTool(t, func(code int) bool { return code == 1 }, "e2fsck", "-fy", img)
			fsck, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}

			jsb, err := ext3fs.ParseJournalSuperblock(journal)
			if err != nil {
				t.Fatal(err)
			}
			if int(jsb.BlockSize) != bs {
				t.Fatalf("journal block size %d, want %d", jsb.BlockSize, bs)
			}
			var ws []logWrite
			for pos := uint64(1); pos < uint64(jsb.MaxLen); pos++ {
				ws = append(ws, logWrite{pos: pos, data: journal[int(pos)*bs : int(pos+1)*bs]})
			}
			var ordered []Transaction
			for _, tx := range feed(t, NewJournalTracker(jsb), ws) {
				ordered = append(ordered, cloneTx(tx))
			}
			if fmt.Sprint(seqs(ordered)) != "[1 2 3 4 5]" {
				t.Fatalf("transactions %v, want [1 2 3 4 5]", seqs(ordered))
			}
			mine := append([]byte(nil), orig...)
			replayLikeRecovery(mine, bs, ordered)

			named := []uint64{10000, 10001, 10002, 10003, 10004}
			for b := uint64(11000); b < 11300; b++ {
				named = append(named, b)
			}
			changed := 0
			for _, b := range named {
				r := func(img []byte) []byte { return img[int(b)*bs : int(b+1)*bs] }
				if !bytes.Equal(r(mine), r(fsck)) {
					t.Errorf("block %d: tracker replay %x..., e2fsck %x...", b, r(mine)[:8], r(fsck)[:8])
				}
				if !bytes.Equal(r(orig), r(fsck)) {
					changed++
				}
			}
			// 10000 10001 10002(tx1; 10001 then from tx4) 10003 and 11000-11299 minus 11005.
			if changed != 303 {
				t.Errorf("e2fsck changed %d of the named blocks, want 303", changed)
			}
			if !bytes.Equal(mine[10000*bs:10000*bs+4], []byte{0xC0, 0x3B, 0x39, 0x98}) {
				t.Error("escaped block 10000 lost its magic")
			}

			// Any arrival order gives the same transactions.
			for seed := int64(1); seed <= 3; seed++ {
				sh := append([]logWrite(nil), ws...)
				rand.New(rand.NewSource(seed)).Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
				tr := NewJournalTracker(jsb)
				var got []Transaction
				for i, w := range sh {
					txs, err := tr.WriteLogBlock(w.pos, w.data, int64(i))
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, txs...)
				}
				sameTxs(t, got, ordered)
			}
		})
	}
}

func cloneTx(tx Transaction) Transaction {
	tx.Blocks = append([]TxBlock(nil), tx.Blocks...)
	return tx
}
