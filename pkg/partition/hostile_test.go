package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// putEntry writes MBR/EBR slot i of the sector at sec.
func putEntry(disk []byte, sec int64, i int, status, typ byte, first, n uint32) {
	e := disk[sec*512+446+16*int64(i):]
	e[0], e[4] = status, typ
	binary.LittleEndian.PutUint32(e[8:], first)
	binary.LittleEndian.PutUint32(e[12:], n)
	disk[sec*512+510], disk[sec*512+511] = 0x55, 0xAA
}

func readErr(t *testing.T, disk []byte, want string) {
	t.Helper()
	tab, err := Read(bytes.NewReader(disk), int64(len(disk)))
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %+v, %v; want a FormatError containing %q", tab, err, want)
	}
}

func TestMBRMalformed(t *testing.T) {
	const sectors = 4096
	fresh := func() []byte { return make([]byte, sectors*512) }

	d := fresh()
	putEntry(d, 0, 0, 0x80, 0x83, 2048, 1024)
	putEntry(d, 0, 1, 0x00, 0x83, 2500, 100)
	readErr(t, d, "partitions 1 and 2 overlap")

	d = fresh()
	putEntry(d, 0, 2, 0x00, 0x83, 2048, sectors)
	readErr(t, d, "mbr at byte 478: partition 3 ends at sector 6144, past the disk's 4096 sectors")

	d = fresh()
	putEntry(d, 0, 0, 0x17, 0x83, 2048, 10)
	readErr(t, d, "mbr at byte 446: partition 1 status is 0x17")

	// An EBR chain that comes back to itself must end.
	d = fresh()
	putEntry(d, 0, 0, 0, 0x05, 1000, 2000)
	putEntry(d, 1000, 0, 0, 0x83, 10, 10)
	putEntry(d, 1000, 1, 0, 0x05, 100, 100)
	putEntry(d, 1100, 0, 0, 0x83, 10, 10)
	putEntry(d, 1100, 1, 0, 0x05, 0, 100) // back to the first EBR: relative 0 is refused
	readErr(t, d, "ebr at byte 563662: next EBR at sector 1000, outside")

	d = fresh()
	putEntry(d, 0, 0, 0, 0x05, 1000, 2000)
	putEntry(d, 1000, 1, 0, 0x05, 100, 100)
	putEntry(d, 1100, 1, 0, 0x05, 200, 100)
	putEntry(d, 1200, 1, 0, 0x05, 100, 100)
	readErr(t, d, "the EBR chain comes back to sector 1100")

	// A logical partition past its extended partition.
	d = fresh()
	putEntry(d, 0, 0, 0, 0x05, 1000, 200)
	putEntry(d, 1000, 0, 0, 0x83, 100, 500)
	readErr(t, d, "logical partition 5 ends at sector 1600, past the extended partition's end 1200")

	// An EBR without its boot signature.
	d = fresh()
	putEntry(d, 0, 0, 0, 0x0F, 1000, 200)
	readErr(t, d, "ebr at byte 512510: boot signature")
}

// gptDisk builds a GPT disk of n sectors with the given entries (slot order), primary and
// backup, CRCs right.
func gptDisk(n int64, entries [][2]uint64) []byte {
	d := make([]byte, n*512)
	putEntry(d, 0, 0, 0, 0xEE, 1, uint32(n-1))
	ent := make([]byte, 128*128)
	linux := GUID{0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4}
	for i, e := range entries {
		copy(ent[i*128:], linux[:])
		ent[i*128+16] = byte(i + 1)
		binary.LittleEndian.PutUint64(ent[i*128+32:], e[0])
		binary.LittleEndian.PutUint64(ent[i*128+40:], e[1])
	}
	hdr := func(my, alt, entLBA uint64) []byte {
		h := make([]byte, 92)
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], 0x10000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], uint64(n-34))
		binary.LittleEndian.PutUint64(h[72:], entLBA)
		binary.LittleEndian.PutUint32(h[80:], 128)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(ent))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(d[512:], hdr(1, uint64(n-1), 2))
	copy(d[1024:], ent)
	copy(d[(n-33)*512:], ent)
	copy(d[(n-1)*512:], hdr(uint64(n-1), 1, uint64(n-33)))
	return d
}

func TestGPTMalformed(t *testing.T) {
	d := gptDisk(4096, [][2]uint64{{100, 199}, {200, 299}})
	tab, err := Read(bytes.NewReader(d), int64(len(d)))
	if err != nil || len(tab.Partitions) != 2 || tab.Partitions[1].Start != 200*512 || tab.Partitions[1].Size != 100*512 {
		t.Fatalf("well-formed: %+v %v", tab, err)
	}
	readErr(t, gptDisk(4096, [][2]uint64{{100, 199}, {150, 299}}), "partitions 1 and 2 overlap")
	readErr(t, gptDisk(4096, [][2]uint64{{10, 199}}), "gpt entry 1 at byte 1056: LBAs 10-199, outside the usable 34-4062")
	readErr(t, gptDisk(4096, [][2]uint64{{300, 299}}), "gpt entry 1 at byte 1056: LBAs 300-299")
	// A header claiming a huge entry array (CRC made right) is refused before any allocation.
	d = gptDisk(4096, nil)
	for _, at := range []int{512, 4095 * 512} {
		binary.LittleEndian.PutUint32(d[at+80:], 1<<30)
		binary.LittleEndian.PutUint32(d[at+16:], 0)
		binary.LittleEndian.PutUint32(d[at+16:], crc32.ChecksumIEEE(d[at:at+92]))
	}
	readErr(t, d, "gpt header at byte 592: 1073741824 entries of 128 bytes")
	// A disk cut short: the backup header is missing, the primary still reads.
	d = gptDisk(4096, [][2]uint64{{100, 199}})[:3000*512]
	tab, err = Read(bytes.NewReader(d), int64(len(d)))
	if err == nil {
		t.Errorf("a GPT whose usable range passes the disk's end: %+v", tab)
	}
}

// smallGPT is a 16-sector GPT disk with a 4-entry array (one sector per copy): a small seed,
// so that the fuzzer's mutations land in the structures rather than in zeros.
func smallGPT() []byte {
	const n = 16
	d := make([]byte, n*512)
	putEntry(d, 0, 0, 0, 0xEE, 1, n-1)
	ent := make([]byte, 4*128)
	for i, e := range [][2]uint64{{3, 6}, {7, 12}} {
		ent[i*128] = 0xAF // any non-zero type
		binary.LittleEndian.PutUint64(ent[i*128+32:], e[0])
		binary.LittleEndian.PutUint64(ent[i*128+40:], e[1])
	}
	hdr := func(my, alt, entLBA uint64) []byte {
		h := make([]byte, 92)
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], 3)
		binary.LittleEndian.PutUint64(h[48:], n-3)
		binary.LittleEndian.PutUint64(h[72:], entLBA)
		binary.LittleEndian.PutUint32(h[80:], 4)
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(ent))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(d[512:], hdr(1, n-1, 2))
	copy(d[1024:], ent)
	copy(d[(n-2)*512:], ent)
	copy(d[(n-1)*512:], hdr(n-1, 1, n-2))
	return d
}

func TestSmallGPTSeed(t *testing.T) {
	d := smallGPT()
	tab, err := Read(bytes.NewReader(d), int64(len(d)))
	if err != nil || tab.Scheme != GPT || len(tab.Partitions) != 2 || tab.Partitions[1].Start != 7*512 {
		t.Fatalf("%+v %v", tab, err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(smallGPT())
	m := make([]byte, 40*512)
	putEntry(m, 0, 0, 0x80, 0x83, 2, 10)
	putEntry(m, 0, 1, 0, 0x05, 20, 20)
	putEntry(m, 20, 0, 0, 0x83, 2, 5)
	putEntry(m, 20, 1, 0, 0x05, 10, 10)
	putEntry(m, 30, 0, 0, 0x82, 1, 5)
	f.Add(m)
	f.Fuzz(func(t *testing.T, disk []byte) {
		tab, err := Read(bytes.NewReader(disk), int64(len(disk)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("not a FormatError: %v", err)
			}
			return
		}
		// What Read accepts is consistent: partitions inside the disk, disjoint.
		for _, p := range tab.Partitions {
			if p.Start <= 0 || p.Size <= 0 || p.End() > int64(len(disk)) {
				t.Fatalf("partition %+v outside a %d-byte disk", p, len(disk))
			}
			for _, q := range tab.Partitions {
				if p.Number != q.Number && p.Start < q.End() && q.Start < p.End() {
					t.Fatalf("overlap %+v %+v", p, q)
				}
			}
		}
	})
}
