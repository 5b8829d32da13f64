package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts what the profiling switches of analyze's environment ask for
// (docs/cli.md): EXT3REPLAY_CPUPROFILE, a CPU profile of the whole run; EXT3REPLAY_TRACE, an
// execution trace (go tool trace: how decoding and the replay overlap on the cores);
// EXT3REPLAY_MEMPROFILE, a heap profile at the end (live objects then, and everything allocated
// during the run). stop ends them and writes what is written at the end.
func startProfiles() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	open := func(env string) (*os.File, error) {
		f, err := os.Create(os.Getenv(env))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		return f, nil
	}
	if os.Getenv("EXT3REPLAY_CPUPROFILE") != "" {
		f, err := open("EXT3REPLAY_CPUPROFILE")
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("EXT3REPLAY_CPUPROFILE: %w", err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if os.Getenv("EXT3REPLAY_TRACE") != "" {
		f, err := open("EXT3REPLAY_TRACE")
		if err != nil {
			return stop, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("EXT3REPLAY_TRACE: %w", err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	if os.Getenv("EXT3REPLAY_MEMPROFILE") != "" {
		// Created now, so that a path that cannot be written fails before the run, not after it.
		f, err := open("EXT3REPLAY_MEMPROFILE")
		if err != nil {
			return stop, err
		}
		stops = append(stops, func() { _ = pprof.Lookup("heap").WriteTo(f, 0); f.Close() })
	}
	return stop, nil
}
