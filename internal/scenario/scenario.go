// Package scenario reads the metadata of a captured scenario of fixtures/real (its scenario.env, a
// shell file of VAR=value lines that the capture scripts source) for the Go tests and tools that
// iterate the corpus.
package scenario

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Env returns the VAR=value assignments of dir/scenario.env (quotes around a value removed,
// comments and other lines ignored). A folder without scenario.env has none.
func Env(dir string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(dir, "scenario.env"))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.ContainsAny(k, " \t") || k == "" {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// Needs returns the scenario's NEEDS value: what the analyzer still lacks to analyse it (for
// example "ext4-resolver"), or "" when nothing. Tests and tools that judge analyze's output skip
// such a scenario, naming the reason; those that only check the capture itself (both logs replay
// alike, the ground truth explains the final disk) still run on it. Whoever adds the missing
// piece removes the line from scenario.env.
func Needs(dir string) (string, error) {
	env, err := Env(dir)
	if err != nil {
		return "", err
	}
	return env["NEEDS"], nil
}

// AnalyzeArgs returns the scenario's ANALYZE_ARGS, split on blanks: the flags analyze needs for
// it, such as a partitioned disk's mount points ("--mount 1=/ --mount 2=/boot"), so that its
// paths read as the guest's, as the ground truth has them.
func AnalyzeArgs(dir string) ([]string, error) {
	env, err := Env(dir)
	if err != nil {
		return nil, err
	}
	return strings.Fields(env["ANALYZE_ARGS"]), nil
}

// Mounts returns the partition -> mount point pairs of the scenario's ANALYZE_ARGS (none for a
// bare file system).
func Mounts(dir string) (map[int]string, error) {
	args, err := AnalyzeArgs(dir)
	if err != nil {
		return nil, err
	}
	m := map[int]string{}
	for i := 0; i < len(args); i++ {
		v, ok := strings.CutPrefix(args[i], "--mount=")
		if !ok && args[i] == "--mount" && i+1 < len(args) {
			i++
			v, ok = args[i], true
		}
		if !ok {
			continue
		}
		n, dir, found := strings.Cut(v, "=")
		num, err := strconv.Atoi(n)
		if !found || err != nil {
			return nil, fmt.Errorf("ANALYZE_ARGS: --mount %q: want N=DIR", v)
		}
		m[num] = dir
	}
	return m, nil
}

// Partitioned reports a scenario whose starting image is a partitioned disk (PART_TABLE in
// scenario.env): its file systems are not at byte 0, so tests that open the image as one file
// system skip it (pkg/analysis, pkg/check and internal/accuracy take its partitions).
func Partitioned(dir string) bool {
	env, err := Env(dir)
	return err == nil && env["PART_TABLE"] != ""
}

// FinalDamaged reports the capture of a driver bug (FINAL_FSCK=damaged in scenario.env): its
// writer leaves a final disk e2fsck -fn does not accept, and final-fsck.txt beside the log holds
// what e2fsck said of it at capture. Tests that expect a clean file system at the end skip it;
// pkg/check's TestRealDriverBugs checks that `check` finds what e2fsck found.
func FinalDamaged(dir string) bool {
	env, err := Env(dir)
	return err == nil && env["FINAL_FSCK"] == "damaged"
}
