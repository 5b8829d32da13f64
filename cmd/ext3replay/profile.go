package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// profileSwitches are the profiling switches of every command (docs/cli.md), each a variable of the
// environment naming the file to write: start begins at the start of the run (nil: nothing to
// begin), stop writes what is left at its end.
var profileSwitches = []struct {
	env   string
	start func(io.Writer) error
	stop  func(io.Writer)
}{
	// A CPU profile of the whole run.
	{"EXT3REPLAY_CPUPROFILE", pprof.StartCPUProfile, func(io.Writer) { pprof.StopCPUProfile() }},
	// An execution trace (go tool trace: how decoding and the replay overlap on the cores).
	{"EXT3REPLAY_TRACE", trace.Start, func(io.Writer) { trace.Stop() }},
	// A heap profile at the end: live objects then, and everything allocated during the run. Its
	// file is created at the start all the same, so that a path that cannot be written fails
	// before the run, not after it.
	{"EXT3REPLAY_MEMPROFILE", nil, func(w io.Writer) { _ = pprof.Lookup("heap").WriteTo(w, 0) }},
}

// startProfiles starts what the profiling switches set in the environment ask for; stop ends
// them, last started first, and closes their files.
func startProfiles() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, s := range profileSwitches {
		path := os.Getenv(s.env)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			return stop, fmt.Errorf("%s: %w", s.env, err)
		}
		if s.start != nil {
			if err := s.start(f); err != nil {
				f.Close()
				return stop, fmt.Errorf("%s: %w", s.env, err)
			}
		}
		end := s.stop
		stops = append(stops, func() { end(f); f.Close() })
	}
	return stop, nil
}
