package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
		"blocks img":     "Usage: ext3replay blocks IMAGE (BLOCK... | PATH... | --inode N)",
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
		"analyze --format":  {"text", "jsonl", "csv", "body", "parquet"},
		"stats --format":    {"table", "markdown", "csv", "json", "parquet"},
		"diff --format":     {"table", "markdown", "json", "html"},
		"inspect --format":  {"text", "json"},
		"blocks --format":   {"text", "json"},
		"check --format":    {"text", "jsonl"},
		"log cat --format":  {"text", "jsonl"},
		"log info --format": {"text", "json"},
		"record --format":   {"text", "jsonl", "csv"},
		"analyze --time":    {"none", "rel", "abs"},
		"stats --sort":      {"path", "writes", "reads", "bytes"},
		"stats --by":        {"file", "dir"},
		"import --from":     {"dm-log-writes", "qemu-trace"},
	} {
		var out bytes.Buffer
		args := append(append([]string{"__complete"}, strings.Fields(cmd)...), "")
		executeArgs(args, &out, &bytes.Buffer{})
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s <TAB>: %q, want %q", cmd, got, want)
		}
	}
}

// Every command with a --format flag completes its values: a new command without an entry in
// formatValues fails here rather than completing file names.
func TestEveryFormatFlagCompletes(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("format") != nil {
			if _, ok := c.GetFlagCompletionFunc("format"); !ok {
				t.Errorf("%s --format has no completion (add it to formatValues in cli.go)", c.CommandPath())
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
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

// Help texts are wrapped for an 80-column terminal (analyze --help had lines of 86 that the
// terminal broke mid-word).
func TestHelpFitsEightyColumns(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for i, l := range strings.Split(c.Long, "\n") {
			if n := len([]rune(l)); n > 80 {
				t.Errorf("%s: line %d of the help is %d columns: %q", c.CommandPath(), i+1, n, l)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
}

// -o FILE writes what stdout would have had, in every command that writes a report (check had
// no -o).
func TestOutputFlagEverywhere(t *testing.T) {
	needFixture(t)
	img, lg := fixtureDir+"/image.raw.zst", fixtureDir+"/io.log.zst"
	chkImg, chkLog := "../../pkg/check/testdata/uboot-replace/image.raw.zst", "../../pkg/check/testdata/uboot-replace/writes.lwlog.zst"
	for _, args := range [][]string{
		{"analyze", "--quiet", img, lg},
		{"stats", img, lg},
		{"diff", "--image", img, lg, lg},
		{"check", chkImg, chkLog},
		{"check", "--format", "jsonl", chkImg, chkLog},
	} {
		var stdout bytes.Buffer
		want := executeArgs(args, &stdout, &bytes.Buffer{})
		file := t.TempDir() + "/out"
		var empty bytes.Buffer
		got := executeArgs(append(append([]string(nil), args...), "-o", file), &empty, &bytes.Buffer{})
		b, err := os.ReadFile(file)
		if err != nil || got != want || !bytes.Equal(b, stdout.Bytes()) || empty.Len() != 0 || stdout.Len() == 0 {
			t.Errorf("%v -o: exit %d (stdout: %d), file %d bytes (stdout %d), %v, stdout with -o %d bytes",
				args, got, want, len(b), stdout.Len(), err, empty.Len())
		}
	}
}

// Where tables are drawn, --format text and --format table are one format: stats and diff said
// table, inspect and blocks text, for the same boxed tables.
func TestTextAndTableAreOne(t *testing.T) {
	needFixture(t)
	img := fixtureDir + "/image.raw.zst"
	for _, args := range [][]string{{"stats", runA}, {"diff", runA, runB}, {"inspect", img}, {"blocks", img, "0-3"}} {
		var a, b bytes.Buffer
		ca := executeArgs(append(append([]string(nil), args...), "--format", "text"), &a, &bytes.Buffer{})
		cb := executeArgs(append(append([]string(nil), args...), "--format", "table"), &b, &bytes.Buffer{})
		if ca != cb || ca >= exitUsage || a.String() != b.String() || !strings.Contains(a.String(), "│") {
			t.Errorf("%v: text exit %d, table exit %d, same output %v", args, ca, cb, a.String() == b.String())
		}
	}
}
