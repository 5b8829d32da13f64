package main

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

// The settled CLI vocabulary (docs/cli.md) applied to the whole command tree in one place.

// formatValues lists each command's --format values, for completion (keyed by command path
// without the root's name).
var formatValues = map[string][]string{
	"analyze":  append(append([]string{"text"}, without(ops.Formats, "text")...), "body", "parquet"),
	"stats":    append(append([]string(nil), render.StatsFormats...), "parquet"),
	"diff":     append(append([]string(nil), render.DiffFormats...), "html"),
	"inspect":  {"text", "json"},
	"blocks":   {"text", "json"},
	"check":    {"text", "jsonl"},
	"log cat":  {"text", "jsonl"},
	"log info": {"text", "json"},
	"record":   {"text", "jsonl", "csv"}, // with --analyze
}

// enumValues lists the values of the other flags that take one of a fixed set, for completion.
var enumValues = map[string]map[string][]string{
	"analyze": {"time": {"none", "rel", "abs"}},
	"stats":   {"by": {"file", "dir"}, "sort": ops.SortKeys},
	"import":  {"from": {"dm-log-writes", "qemu-trace"}},
}

// subPath is a command's path without the root's name: "log cat".
func subPath(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return ""
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// settle gives every command of the tree the shared habits: argument-count errors carry the
// usage line, a command with subcommands refuses an unknown one (exit 2) instead of printing
// help with exit 0, --format values complete, and the profiling switches (profile.go) apply.
func settle(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c != root && c.RunE == nil && c.Run == nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unknown command %q for %q\nUsage: %s", args[0], cmd.CommandPath(), cmd.CommandPath()+" COMMAND")
				}
				return nil
			}
			c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
		} else if c.Args != nil {
			check := c.Args
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return fmt.Errorf("%w\nUsage: %s", err, cmd.UseLine())
				}
				return nil
			}
		}
		if run := c.RunE; run != nil && !c.HasSubCommands() {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				stop, err := startProfiles()
				defer stop()
				if err != nil {
					return err
				}
				return run(cmd, args)
			}
		}
		if vals, ok := formatValues[subPath(c)]; ok && c.Flags().Lookup("format") != nil {
			_ = c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
		}
		for flag, vals := range enumValues[subPath(c)] {
			if c.Flags().Lookup(flag) != nil {
				_ = c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	// A bad flag shows the usage line too (children inherit this).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nUsage: %s", err, c.UseLine())
	})
}

// humanFormat maps "text" and "table" to the name a command that draws tables for people uses
// for that format (its canonical): both spellings work wherever tables are drawn (docs/cli.md).
func humanFormat(format, canonical string) string {
	if format == "text" || format == "table" {
		return canonical
	}
	return format
}

// buildVersion is the version -ldflags set, else the module version or VCS revision the Go
// toolchain recorded (a plain go build or go install), else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
}

// isTerminal reports whether f is a terminal (a character device such as /dev/null is not).
func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// sizeValue is a byte count flag that accepts what reports print: 4096, 64K, 64KiB, 1.5M,
// "64.0 KiB" (powers of 1024; B, K, M, G, T, P, E with an optional iB or B).
type sizeValue int64

func (v *sizeValue) String() string { return strconv.FormatInt(int64(*v), 10) }
func (v *sizeValue) Type() string   { return "size" }
func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	shift := 0
	if i := len(t) - 1; i >= 0 {
		if k := strings.IndexByte("KMGTPE", t[i]); k >= 0 {
			shift = 10 * (k + 1)
			t = t[:i]
		}
	}
	if t == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with K, M, G, T (KiB...)", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || (shift > 0 && n > math.MaxInt64>>shift) {
			return 0, fmt.Errorf("size %q: out of range", s)
		}
		return n << shift, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with K, M, G, T (KiB...)", s)
	}
	f *= float64(int64(1) << shift)
	if f >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(f), nil
}
