// Command accuracy runs `ext3replay analyze --format jsonl` on every captured
// scenario under fixtures/real and scores the output against the scenario's
// expected.jsonl (see package internal/accuracy). It prints a Markdown table
// and, with -o, writes it with details to a file (docs/accuracy.md).
//
//	go run ./internal/accuracy/cmd/accuracy -bin bin/ext3replay -real fixtures/real -o docs/accuracy.md
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ext3replay/ext3replay/internal/accuracy"
	fixture "github.com/ext3replay/ext3replay/internal/scenario"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Logs a scenario may have, in the order they are scored.
var logNames = []string{"io.log.zst", "writes.lwlog.zst"}

func main() {
	bin := flag.String("bin", "bin/ext3replay", "ext3replay binary")
	realDir := flag.String("real", "fixtures/real", "directory of scenario folders")
	out := flag.String("o", "", "also write the report (Markdown) to this file")
	command := flag.String("command", "", "command line to cite in the report (default: this one)")
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit of one analyze run")
	strict := flag.Bool("strict", false, "exit 1 when an analyze run fails or its output does not parse")
	flag.Parse()
	if err := run(*bin, *realDir, *out, *command, *timeout, *strict, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "accuracy:", err)
		os.Exit(1)
	}
}

func run(bin, realDir, out, command string, timeout time.Duration, strict bool, only []string) error {
	dirs, err := scenarios(realDir, only)
	if err != nil {
		return err
	}
	var rows []accuracy.Row
	for _, dir := range dirs {
		name := filepath.Base(dir)
		expected, err := readExpected(filepath.Join(dir, "expected.jsonl"))
		if err != nil {
			return err
		}
		for _, ln := range logNames {
			logPath := filepath.Join(dir, ln)
			if _, err := os.Stat(logPath); err != nil {
				continue
			}
			row := accuracy.Row{Scenario: name, Log: ln, NoReads: strings.Contains(ln, "lwlog")}
			extra, err := fixture.AnalyzeArgs(dir)
			if err != nil {
				return err
			}
			reported, err := analyze(bin, filepath.Join(dir, "image.raw.zst"), logPath, timeout, extra...)
			if err != nil {
				row.Err = err
			} else {
				row.Result = accuracy.Score(expected, reported)
			}
			rows = append(rows, row)
		}
	}
	var table bytes.Buffer
	if err := accuracy.WriteTable(&table, rows); err != nil {
		return err
	}
	os.Stdout.Write(table.Bytes())
	failed := 0
	for _, r := range rows {
		if r.Err != nil {
			failed++
		}
	}
	if strict && failed > 0 {
		return fmt.Errorf("%d of %d analyze runs failed", failed, len(rows))
	}
	if out == "" {
		return nil
	}
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	var doc bytes.Buffer
	fmt.Fprintf(&doc, "# Accuracy on the real fixture corpus\n\n")
	fmt.Fprintf(&doc, "Made by `%s` on %s (%s).\n", command, time.Now().UTC().Format("2006-01-02 15:04 MST"), version(bin))
	doc.WriteString(legend)
	doc.Write(table.Bytes())
	var details bytes.Buffer
	if err := accuracy.WriteDetails(&details, rows, 8); err != nil {
		return err
	}
	if details.Len() > 0 {
		doc.WriteString("\n## What was missed or wrong\n")
		doc.Write(details.Bytes())
	}
	return os.WriteFile(out, doc.Bytes(), 0o644)
}

const legend = `
Each scenario of fixtures/real (see docs/fixtures.md) is analyzed from each log it has: io.log.zst (recorded by
` + "`ext3replay record`" + `, reads and writes) and writes.lwlog.zst (QEMU blklogwrites, writes only: expected reads
cannot be found in it). The ground truth is expected.jsonl, printed by the guest workload as it ran.

- **ns expected / ns reported**: namespace operations (create, mkdir, symlink, move, link, unlink, delete,
  rmdir, truncate) the workload must show / the analyzer reported (less those matching only optional lines).
- **precision / recall**: of namespace operations, matched as a multiset of (op, path, to); for a file with
  several hard links, the other names the workload listed ("aka") count as its path.
- **writes found / reads found**: expected data writes (reads) whose bytes were reported on that path:
  the k-th one to a file is found when the data bytes reported under its names reach the sum of the first k
  min_bytes (volume, not request by request: the kernel merges and delays block writes).
- **stray writes (bytes)**: data writes reported on a path the workload never wrote.
- **unattributed bytes**: data or unowned I/O reported without a path.
- **anomalies**: anomaly lines reported.

`

func scenarios(realDir string, only []string) ([]string, error) {
	entries, err := os.ReadDir(realDir)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, o := range only {
		want[o] = true
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() || (len(want) > 0 && !want[e.Name()]) {
			continue
		}
		d := filepath.Join(realDir, e.Name())
		if _, err := os.Stat(filepath.Join(d, "expected.jsonl")); err != nil {
			continue
		}
		// A scenario the analyzer cannot handle yet (NEEDS= in scenario.env) is scored only when named.
		needs, err := fixture.Needs(d)
		if err != nil {
			return nil, err
		}
		if needs != "" && !want[e.Name()] {
			fmt.Fprintf(os.Stderr, "accuracy: %s skipped: needs %s (name it to score it anyway)\n", e.Name(), needs)
			continue
		}
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no scenario with an expected.jsonl under %s", realDir)
	}
	return dirs, nil
}

func readExpected(path string) ([]accuracy.Expected, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return accuracy.ReadExpected(f, path)
}

// extra are the scenario's ANALYZE_ARGS (a partitioned disk's --mount points).
func analyze(bin, image, logPath string, timeout time.Duration, extra ...string) ([]ops.Op, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"analyze", image, logPath, "--format", "jsonl"}, extra...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("analyze timed out after %v", timeout)
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return nil, fmt.Errorf("analyze: %v: %s", err, msg)
	}
	got, err := ops.ReadJSONLNamed(&stdout, "analyze output")
	if err != nil {
		return nil, err
	}
	return got, nil
}

func version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return bin
	}
	return strings.TrimSpace(string(out))
}
