package ops

import (
	"testing"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 30: "5.0 GiB", -2048: "-2.0 KiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("%d: %q want %q", n, got, want)
		}
	}
}
