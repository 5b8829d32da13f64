package check

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDirHashDebugfs compares dirHash with debugfs's dx_hash (e2fsprogs' own implementation)
// on names of every length class (one round, several rounds, high-bit bytes) and both seeds.
func TestDirHashDebugfs(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs not installed")
	}
	names := []string{"a", "hello", "lost+found", "file-0123456789abcdef", strings.Repeat("x", 33),
		strings.Repeat("long-name-", 20), "\xe9t\xe9", "caf\xc3\xa9", "0", "ab\xffcd"}
	seeds := []string{"", "6f0d8a3e-2c1b-4e5f-9a7d-3b2c1d0e4f5a"}
	// debugfs computes the signed-char variants (hash versions 0-2, what mkfs picks on x86).
	algs := map[string]int{"legacy": hashLegacy, "half_md4": hashHalfMD4, "tea": hashTEA}
	re := regexp.MustCompile(`is 0x([0-9a-f]+)`)
	n := 0
	for alg, v := range algs {
		for _, seed := range seeds {
			var sd [4]uint32
			args := []string{"-h", alg}
			if seed != "" {
				args = append(args, "-s", seed)
				hex := strings.ReplaceAll(seed, "-", "")
				for i := range sd {
					// The seed is the UUID's bytes read as four little-endian words.
					b, _ := strconv.ParseUint(hex[8*i:8*i+8], 16, 32)
					sd[i] = uint32(b>>24) | uint32(b>>8)&0xff00 | uint32(b<<8)&0xff0000 | uint32(b<<24)
				}
			}
			for _, name := range names {
				cmd := fmt.Sprintf("dx_hash %s %s", strings.Join(args, " "), name)
				out, _ := exec.Command("debugfs", "-R", cmd, "/dev/null").CombinedOutput()
				m := re.FindSubmatch(out)
				if m == nil {
					t.Fatalf("%s: %s", cmd, out)
				}
				want, _ := strconv.ParseUint(string(m[1]), 16, 32)
				got, ok := dirHash(v, []byte(name), sd)
				if !ok || got != uint32(want)&^1 {
					t.Errorf("%s %q seed %q: got %#x, debugfs %#x", alg, name, seed, got, want)
				}
				n++
			}
		}
	}
	t.Logf("%d hashes compared", n)
	// The unsigned variants differ from the signed ones only on bytes >= 0x80.
	for v := hashLegacy; v <= hashTEA; v++ {
		a, _ := dirHash(v, []byte("hello"), [4]uint32{})
		b, _ := dirHash(v+3, []byte("hello"), [4]uint32{})
		c, _ := dirHash(v, []byte("caf\xc3\xa9"), [4]uint32{})
		d, _ := dirHash(v+3, []byte("caf\xc3\xa9"), [4]uint32{})
		if a != b || c == d {
			t.Errorf("hash version %d: signed and unsigned variants: %#x %#x on ASCII, %#x %#x on UTF-8", v, a, b, c, d)
		}
	}
}
