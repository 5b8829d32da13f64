package hugebuf

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestAdvised: the kernel has the advice on the memory of a large buffer (VmFlags "hg" in
// /proc/self/smaps for the mapping holding its first whole 2 MiB page), and on the first and last
// byte of a large Slice. Whether it then backs them with huge pages depends on free memory; that
// is logged, not asserted.
func TestAdvised(t *testing.T) {
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || strings.Contains(string(b), "[never]") {
		t.Skip("no transparent huge pages on this kernel")
	}
	b := Make(16 << 20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	checkAdvised(t, "Make's buffer", (start+hugePage-1)&^(hugePage-1))
	type rec [5]uint64
	s := Slice[rec](3*hugePage/40 + 7)
	for i := 0; i < len(s); i += 4096 / 40 {
		s[i][0] = 1
	}
	checkAdvised(t, "Slice's first element", uintptr(unsafe.Pointer(&s[0])))
	checkAdvised(t, "Slice's last element", uintptr(unsafe.Pointer(&s[len(s)-1][4])))
	b[0], s[0][0] = 2, 2 // keep b and s alive to here
}

// checkAdvised fails unless the mapping holding addr is advised MADV_HUGEPAGE.
func checkAdvised(t *testing.T, what string, addr uintptr) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, found := false, false
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := vmaRange(line); ok {
			in = lo <= addr && addr < hi
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(line, "AnonHugePages:") {
			t.Logf("mapping of %s: %s", what, line)
		}
		if strings.HasPrefix(line, "VmFlags:") {
			found = true
			if !strings.Contains(" "+line[len("VmFlags:"):]+" ", " hg ") {
				t.Errorf("the mapping of %s is not advised MADV_HUGEPAGE: %s", what, line)
			}
		}
	}
	if !found {
		t.Fatalf("no mapping holds address %#x (%s) in /proc/self/smaps", addr, what)
	}
}

// vmaRange parses a mapping's header line of smaps ("lo-hi perms ...").
func vmaRange(line string) (lo, hi uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.Contains(f[0], "-") || strings.HasSuffix(f[0], ":") {
		return 0, 0, false
	}
	a, z, _ := strings.Cut(f[0], "-")
	l, err1 := strconv.ParseUint(a, 16, 64)
	h, err2 := strconv.ParseUint(z, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}

// TestWarm: after Warm and a collection, the heap serves small allocations from the pages Warm
// mapped: 16 MiB of 4 KiB objects take a fraction of the page faults they take in a process that
// did not warm its heap (one a page there). Each side runs in a fresh process (this test binary
// again), so that neither finds memory the other freed.
func TestWarm(t *testing.T) {
	if mode := os.Getenv("HUGEBUF_WARM_CHILD"); mode != "" {
		if mode == "warm" {
			Warm(32 << 20)
			runtime.GC()
		}
		before := minorFaults(t)
		var keep [][]byte
		for range 4096 {
			b := make([]byte, 4096)
			b[0] = 1
			keep = append(keep, b)
		}
		fmt.Printf("faults %d\n", minorFaults(t)-before)
		runtime.KeepAlive(keep)
		return
	}
	faults := func(mode string) int64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWarm$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HUGEBUF_WARM_CHILD="+mode)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s child: %v", mode, err)
		}
		var n int64
		if _, err := fmt.Sscanf(string(out), "faults %d", &n); err != nil {
			t.Fatalf("%s child printed %q", mode, out)
		}
		return n
	}
	cold, warm := faults("cold"), faults("warm")
	t.Logf("minor faults for 16 MiB of 4 KiB objects: %d in a fresh heap, %d after Warm", cold, warm)
	if cold < 2048 {
		t.Skipf("only %d faults in a fresh heap: this kernel does not fault as measured", cold)
	}
	if warm*4 > cold {
		t.Errorf("%d faults after Warm against %d without: the warmed pages were not reused", warm, cold)
	}
}

func minorFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Skip(err)
	}
	return ru.Minflt
}
