package ext3fs_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ext3fs/ext3fstest"
)

func TestCrcVectors(t *testing.T) {
	p := []byte("123456789")
	// CRC-32C check value 0xE3069283 is with pre- and post-inversion; Crc32c has neither.
	if got, want := ext3fs.Crc32c(^uint32(0), p), ^uint32(0xE3069283); got != want {
		t.Errorf("Crc32c = %08x, want %08x", got, want)
	}
	// CRC-16/ARC check value.
	if got := ext3fs.Crc16(0, p); got != 0xBB3D {
		t.Errorf("Crc16 = %04x, want bb3d", got)
	}
}

// csumKind names the kind of structure a Checksum is about ("inode", "group descriptor", ...).
func csumKind(st string) string {
	for _, k := range []string{"superblock", "group descriptor", "block bitmap", "inode bitmap", "inode",
		"extent block", "directory block", "htree block", "xattr block", "orphan file block"} {
		if strings.HasPrefix(st, k) {
			return k
		}
	}
	return st
}

func collectChecksums(t *testing.T, fsys *ext3fs.FS) []ext3fs.Checksum {
	t.Helper()
	var out []ext3fs.Checksum
	if err := fsys.Checksums(func(c ext3fs.Checksum) error {
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatalf("Checksums: %v", err)
	}
	return out
}

// TestChecksumsMkfs checks that every checksummed structure of fresh mkfs.ext4 images with the
// populated test tree verifies, that every kind is met, and that flipping one covered byte of the
// first structure of each kind makes exactly that structure fail.
func TestChecksumsMkfs(t *testing.T) {
	ext3fstest.Need(t)
	for _, im := range ext3fstest.Ext4 {
		t.Run(im.Name, func(t *testing.T) {
			t.Parallel()
			img, _ := ext3fstest.Build(t, im)
			fsys := ext3fstest.Open(t, img)
			sums := collectChecksums(t, fsys)
			kinds := map[string]int{}
			first := map[string]ext3fs.Checksum{}
			for _, c := range sums {
				if !c.OK() {
					t.Errorf("%v", c.Err())
				}
				k := csumKind(c.Struct)
				if c.Unset {
					continue
				}
				kinds[k]++
				if _, ok := first[k]; !ok {
					first[k] = c
				}
			}
			if got := kinds["group descriptor"]; got != int(fsys.SB.GroupCount()) {
				t.Errorf("%d group descriptors checked, want %d", got, fsys.SB.GroupCount())
			}
			want := []string{"group descriptor"}
			if fsys.SB.HasMetadataCsum() {
				want = append(want, "superblock", "block bitmap", "inode bitmap", "inode", "extent block", "directory block", "htree block")
			} else if len(kinds) != 1 {
				t.Errorf("gdt_csum only, but checked %v", kinds)
			}
			if fsys.SB.FeatureCompat&ext3fs.CompatOrphanFile != 0 {
				want = append(want, "orphan file block")
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("no %s checked (kinds: %v)", k, kinds)
				}
			}
			t.Logf("checked %v", kinds)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			bs := int64(fsys.BlockSize())
			for k, c := range first {
				var at int64
				switch k {
				case "superblock":
					at = c.Start + 0x78 // s_volume_name
				case "group descriptor":
					at = c.Start + 0x0C // bg_free_blocks_count_lo
				case "block bitmap":
					at = c.Start + int64(fsys.SB.ClustersPerGroup/8) - 1
				case "inode bitmap":
					at = c.Start + int64(fsys.SB.InodesPerGroup/8) - 1
				case "inode":
					at = c.Start + 0x10 // i_mtime
				case "extent block":
					at = c.Start + 8 // eh_generation
				case "directory block":
					at = c.Start + 8 // the first name
				case "htree block":
					at = c.Start + 0x20 + 4 // the root's first index entry (block number)
				case "xattr block":
					at = c.Start + bs - 1 // the value area
				case "orphan file block":
					at = c.Start // the first inode slot
				}
				bad := bytes.Clone(raw)
				bad[at] ^= 0x40
				fb, err := ext3fs.OpenWith(bytes.NewReader(bad), ext3fs.Options{InlineData: true})
				if err != nil {
					t.Fatalf("%s: flipped byte %d: Open: %v", k, at, err)
				}
				found := false
				for _, d := range collectChecksums(t, fb) {
					if d.Start == c.Start && d.Struct == c.Struct {
						found = true
						if d.OK() || !errors.Is(d.Err(), ext3fs.ErrBadChecksum) {
							t.Errorf("%s at %d: byte %d flipped, still verifies", d.Struct, d.Start, at)
						}
					} else if !d.OK() {
						t.Errorf("%s: flipping byte %d of %s also broke %v", k, at, c.Struct, d.Err())
					}
				}
				if !found {
					t.Errorf("%s at %d not checked after the flip", c.Struct, c.Start)
				}
			}
		})
	}
}
