package main

import (
	"io"
	"os"
	"testing"
)

// BenchmarkInspectImage runs inspect (text, then json) on $EXT3REPLAY_BENCH_IMAGE (the 6 GiB /
// 100,000-file image of scripts/bench-index.sh), output discarded.
func BenchmarkInspectImage(b *testing.B) {
	img := os.Getenv("EXT3REPLAY_BENCH_IMAGE")
	if img == "" {
		b.Skip("EXT3REPLAY_BENCH_IMAGE not set")
	}
	inspectCrossCheck = false // what the command does, not the tests' double listing
	defer func() { inspectCrossCheck = true }()
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := runArgs(io.Discard, io.Discard, "inspect", "--format", format, img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
