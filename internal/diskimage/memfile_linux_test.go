package diskimage

import (
	"syscall"
	"testing"
)

// memFile gives a sparse file in memory for an image of known size that half the available
// memory holds, and nothing otherwise.
func TestMemFile(t *testing.T) {
	if f := memFile(-1); f != nil {
		f.Close()
		t.Error("a memory file for an image of unknown size")
	}
	if f := memFile(1 << 62); f != nil {
		f.Close()
		t.Error("a memory file for 4 EiB")
	}
	if memAvailable() < 64<<20 {
		t.Skipf("MemAvailable %d bytes", memAvailable())
	}
	f := memFile(16 << 20)
	if f == nil {
		t.Fatal("no memory file for 16 MiB")
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), 16<<20); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 16<<20+1 || st.Blocks*512 > 64<<10 {
		t.Errorf("size %d, %d bytes allocated: want 16 MiB + 1, sparse", st.Size, st.Blocks*512)
	}
}
