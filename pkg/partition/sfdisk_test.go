package partition

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sfdiskDump is `sfdisk --json`: the same dump as `sfdisk -d`, in a form that needs no parser.
type sfdiskDump struct {
	Table struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		FirstLBA   uint64 `json:"firstlba"`
		LastLBA    uint64 `json:"lastlba"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Node     string `json:"node"`
			Start    int64  `json:"start"`
			Size     int64  `json:"size"`
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Name     string `json:"name"`
			Bootable bool   `json:"bootable"`
			Attrs    string `json:"attrs"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func needSfdisk(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sfdisk")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sfdisk missing (package fdisk; scripts/deps.sh installs it)")
		}
		t.Skip("sfdisk missing (package fdisk)")
	}
	return p
}

// makeDisk writes a sparse disk of size bytes and partitions it with sfdisk's script.
func makeDisk(t *testing.T, size int64, script string) string {
	t.Helper()
	sf := needSfdisk(t)
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sf, "-q", "--no-reread", "--no-tell-kernel", p)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return p
}

func dump(t *testing.T, p string) sfdiskDump {
	t.Helper()
	out, err := exec.Command(needSfdisk(t), "--json", p).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var d sfdiskDump
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return d
}

func readFile(t *testing.T, p string) *Table {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	tab, err := Read(f, st.Size())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return tab
}

// compare checks tab against sfdisk's reading of the same disk, field by field.
func compare(t *testing.T, tab *Table, d sfdiskDump) {
	t.Helper()
	want := map[string]Scheme{"gpt": GPT, "dos": MBR}[d.Table.Label]
	if tab.Scheme != want {
		t.Fatalf("scheme %q, sfdisk says %q", tab.Scheme, d.Table.Label)
	}
	if !strings.EqualFold(tab.DiskID, d.Table.ID) {
		t.Errorf("disk id %s, sfdisk %s", tab.DiskID, d.Table.ID)
	}
	if tab.Scheme == GPT && (tab.FirstUsableLBA != d.Table.FirstLBA || tab.LastUsableLBA != d.Table.LastLBA) {
		t.Errorf("usable LBAs %d-%d, sfdisk %d-%d", tab.FirstUsableLBA, tab.LastUsableLBA, d.Table.FirstLBA, d.Table.LastLBA)
	}
	ss := d.Table.SectorSize
	n := 0
	for _, sp := range d.Table.Partitions {
		num, err := strconv.Atoi(sp.Node[strings.LastIndexFunc(sp.Node, func(r rune) bool { return r < '0' || r > '9' })+1:])
		if err != nil {
			t.Fatalf("node %q", sp.Node)
		}
		var p Partition
		if tab.Extended != nil && tab.Extended.Number == num {
			p = *tab.Extended
		} else {
			var ok bool
			if p, ok = tab.Partition(num); !ok {
				t.Errorf("partition %d (sfdisk %+v) missing", num, sp)
				continue
			}
			n++
		}
		if p.Start != sp.Start*ss || p.Size != sp.Size*ss {
			t.Errorf("partition %d: bytes %d+%d, sfdisk %d+%d", num, p.Start, p.Size, sp.Start*ss, sp.Size*ss)
		}
		typ := p.Type
		if tab.Scheme == MBR {
			v, _ := strconv.ParseUint(p.Type, 16, 8)
			typ = strconv.FormatUint(v, 16)
		}
		if !strings.EqualFold(typ, sp.Type) {
			t.Errorf("partition %d: type %s, sfdisk %s", num, p.Type, sp.Type)
		}
		if p.UUID != sp.UUID || p.Name != sp.Name {
			t.Errorf("partition %d: uuid %s name %q, sfdisk %s %q", num, p.UUID, p.Name, sp.UUID, sp.Name)
		}
		if tab.Scheme == MBR && p.Bootable != sp.Bootable {
			t.Errorf("partition %d: bootable %v, sfdisk %v", num, p.Bootable, sp.Bootable)
		}
	}
	if n != len(tab.Partitions) {
		t.Errorf("%d partitions, sfdisk lists %d", len(tab.Partitions), n)
	}
}

var sfdiskCases = []struct {
	name   string
	size   int64
	script string
	kinds  []Kind
}{
	{"gpt-root-boot-swap", 64 << 20, "label: gpt\nstart=2048, size=40960, type=linux, name=\"root\"\nstart=43008, size=20480, type=linux, name=\"boot, ext2\"\nsize=8192, type=swap\n",
		[]Kind{KindLinux, KindLinux, KindSwap}},
	{"gpt-gaps-slots", 64 << 20, "label: gpt\nfirst-lba: 34\n" +
		"1 : start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649\n" +
		"3 : start=4096, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI System\"\n" +
		"7 : start=20480, size=30000, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=01234567-89AB-CDEF-0123-456789ABCDEF, attrs=\"LegacyBIOSBootable\"\n",
		[]Kind{KindBIOSBoot, KindEFI, KindLinux}},
	{"mbr-primaries", 32 << 20, "label: dos\nlabel-id: 0x12345678\nstart=2048, size=8192, type=83, bootable\nstart=10240, size=8192, type=82\nstart=18432, size=8192, type=8e\nstart=26624, type=fd\n",
		[]Kind{KindLinux, KindSwap, KindLVM, KindRAID}},
	{"mbr-logical", 64 << 20, "label: dos\nstart=2048, size=20480, type=83, bootable\nstart=22528, type=5\nstart=24576, size=10240, type=83\nstart=36864, size=8192, type=82\nstart=47104, size=4096, type=7\n",
		[]Kind{KindLinux, KindLinux, KindSwap, KindOther}},
}

func TestAgainstSfdisk(t *testing.T) {
	for _, c := range sfdiskCases {
		t.Run(c.name, func(t *testing.T) {
			p := makeDisk(t, c.size, c.script)
			tab := readFile(t, p)
			compare(t, tab, dump(t, p))
			var kinds []Kind
			for _, q := range tab.Partitions {
				kinds = append(kinds, q.Kind)
			}
			if !slicesEqual(kinds, c.kinds) {
				t.Errorf("kinds %v, want %v", kinds, c.kinds)
			}
		})
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGPTAreas: the table's own sectors are where the header says, primary and backup.
func TestGPTAreas(t *testing.T) {
	p := makeDisk(t, 64<<20, sfdiskCases[0].script)
	tab := readFile(t, p)
	last := int64(64<<20) - 512
	want := []Area{{0, 512, "mbr"}, {512, 512, "gpt header"}, {1024, 16384, "gpt entries"},
		{last - 16384, 16384, "gpt backup entries"}, {last, 512, "gpt backup header"}}
	if len(tab.Areas) != len(want) {
		t.Fatalf("areas %+v, want %+v", tab.Areas, want)
	}
	for i := range want {
		if tab.Areas[i] != want[i] {
			t.Errorf("area %d: %+v, want %+v", i, tab.Areas[i], want[i])
		}
	}
	// Locate: inside partition 2, in the entry array, in the gap before partition 1.
	if q, ok, _ := tab.Locate(43008*512 + 7); !ok || q.Number != 2 {
		t.Errorf("Locate in partition 2: %v %v", q, ok)
	}
	if _, ok, a := tab.Locate(2000); ok || a == nil || a.What != "gpt entries" {
		t.Errorf("Locate in the entries: %v %v", ok, a)
	}
	if _, ok, a := tab.Locate(40 * 512); ok || a != nil {
		t.Errorf("Locate in the gap: %v %v", ok, a)
	}
}

// TestMBRAreas: every EBR of the chain is a table area.
func TestMBRAreas(t *testing.T) {
	p := makeDisk(t, 64<<20, sfdiskCases[3].script)
	tab := readFile(t, p)
	var ebrs []int64
	for _, a := range tab.Areas {
		if a.What == "ebr" {
			ebrs = append(ebrs, a.Start/512)
		}
	}
	// sfdisk puts each EBR right before its logical partition's default 2048-sector alignment.
	if len(ebrs) != 3 || ebrs[0] != 22528 {
		t.Errorf("EBRs at sectors %v, want 3, the first at 22528", ebrs)
	}
	if tab.Extended == nil || tab.Extended.Number != 2 || tab.Extended.Kind != KindExtended {
		t.Errorf("extended %+v", tab.Extended)
	}
}

func patch(t *testing.T, p string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestGPTBackup: a damaged primary header or entry array falls back to the backup, as sfdisk
// does; both damaged is an error naming the primary's offset.
func TestGPTBackup(t *testing.T) {
	for _, c := range []struct {
		name string
		off  int64
		msg  string
	}{{"header", 512 + 30, "gpt header at byte 528: header CRC32"}, {"entries", 1024 + 40, "gpt entries at byte 1024: entry array CRC32"}} {
		t.Run(c.name, func(t *testing.T) {
			p := makeDisk(t, 64<<20, sfdiskCases[0].script)
			want := dump(t, p)
			patch(t, p, c.off, []byte{0x5a}) // no byte patched here is 0x5a
			tab := readFile(t, p)
			if !tab.BackupUsed || tab.PrimaryErr == nil || !strings.Contains(tab.PrimaryErr.Error(), c.msg) {
				t.Fatalf("backup used %v, primary error %v; want %q", tab.BackupUsed, tab.PrimaryErr, c.msg)
			}
			compare(t, tab, want)
			last := int64(64<<20) - 512
			patch(t, p, last+30, []byte{0xff})
			f, _ := os.Open(p)
			defer f.Close()
			_, err := Read(f, 64<<20)
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "backup") {
				t.Errorf("both copies damaged: %v", err)
			}
		})
	}
}

// TestBare: a bare file system and an empty disk have no table.
func TestBare(t *testing.T) {
	tab, err := Read(bytes.NewReader(make([]byte, 1<<20)), 1<<20)
	if err != nil || tab.Scheme != None {
		t.Errorf("empty disk: %v %v", tab, err)
	}
	mkfs, err := exec.LookPath("mke2fs")
	if err != nil {
		t.Skip("mke2fs missing")
	}
	p := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command(mkfs, "-q", "-F", "-t", "ext4", p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if tab := readFile(t, p); tab.Scheme != None {
		t.Errorf("bare ext4: scheme %q", tab.Scheme)
	}
	// Even with a stale boot signature left in sector 0.
	patch(t, p, 510, []byte{0x55, 0xAA})
	if tab := readFile(t, p); tab.Scheme != None {
		t.Errorf("bare ext4 with a boot signature: scheme %q", tab.Scheme)
	}
}
