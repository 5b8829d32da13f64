package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Unknown subcommands used to print help and exit 0, so a typo in a script passed silently.
func TestUnknownSubcommandExits2(t *testing.T) {
	for _, args := range [][]string{{"log", "infp", "x.log"}, {"log", "frob"}, {"frob"}} {
		var stderr bytes.Buffer
		if code := executeArgs(args, &bytes.Buffer{}, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(stderr.String(), "unknown command") {
			t.Errorf("%v: stderr %q", args, stderr.String())
		}
	}
	var out bytes.Buffer
	if code := executeArgs([]string{"log"}, &out, &bytes.Buffer{}); code != exitOK || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("log alone: exit %d, want its help and 0:\n%s", code, out.String())
	}
}

func TestArgCountErrorShowsUsage(t *testing.T) {
	for args, want := range map[string]string{
		"inspect":        "Usage: ext3replay inspect IMAGE",
		"analyze x":      "Usage: ext3replay analyze IMAGE LOG",
		"blocks img":     "Usage: ext3replay blocks IMAGE BLOCK...",
		"log info a b":   "Usage: ext3replay log info LOG",
		"stats a b c":    "Usage: ext3replay stats (IMAGE LOG | RUN.jsonl)",
		"record extra1":  "Usage: ext3replay record",
		"stats --frob x": "Usage: ext3replay stats (IMAGE LOG | RUN.jsonl)",
	} {
		var stderr bytes.Buffer
		code := executeArgs(strings.Fields(args), &bytes.Buffer{}, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", args, code, stderr.String(), exitUsage, want)
		}
	}
}

func TestFormatCompletion(t *testing.T) {
	for cmd, want := range map[string][]string{
		"analyze": {"text", "jsonl", "csv", "body", "parquet"},
		"stats":   {"table", "markdown", "csv", "json", "parquet"},
		"diff":    {"table", "markdown", "json", "html"},
		"inspect": {"text", "json"},
		"blocks":  {"text", "json"},
		"log cat": {"text", "jsonl"},
		"record":  {"text", "jsonl", "csv"},
	} {
		var out bytes.Buffer
		args := append(append([]string{"__complete"}, strings.Fields(cmd)...), "--format", "")
		executeArgs(args, &out, &bytes.Buffer{})
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s --format <TAB>: %q, want %q", cmd, got, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("/dev/null counted as a terminal")
	}
}

func TestBuildVersion(t *testing.T) {
	if v := buildVersion(); v == "" {
		t.Error("empty version")
	}
	old := version
	defer func() { version = old }()
	version = "v9.9.9"
	if v := buildVersion(); v != "v9.9.9" {
		t.Errorf("ldflags version not kept: %q", v)
	}
}

// Sizes are accepted as reports print them: --min-bytes 64K was refused though reports say "64.0 KiB".
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "64K": 64 << 10, "64k": 64 << 10, "64KiB": 64 << 10,
		"64.0 KiB": 64 << 10, "1.5M": 3 << 19, "2G": 2 << 30, "100B": 100, "1E": 1 << 60} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "K", "-1", "12X", "8E", "1e30", "NaN"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("%q: %d accepted", in, got)
		}
	}
	if code, out := run(t, "diff", "--min-bytes", "64K", runA, runA); code != exitOK || !strings.Contains(out, "min 64.0 KiB") {
		t.Errorf("diff --min-bytes 64K: exit %d\n%s", code, out)
	}
}
