package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite the output shown in the docs' console blocks from what the commands print now")

// The docs cannot drift: every ```console block of README.md and docs/*.md is run, and each
// "$ ext3replay ..." line's standard output must be the lines below it. A block whose last
// line is "..." shows only the first lines of the output; one with "..." elsewhere too is an
// excerpt: its lines must appear in the output in that order, "..." standing for lines left out. Commands run in a temporary
// directory where fixtures/ is the repository's, so "-o run.jsonl" in one block makes the
// run.jsonl a later block of the same file reads. go test ./cmd/ext3replay -run TestDocs -update
// rewrites the shown output.
func TestDocsConsoleBlocks(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	blocks := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte("```console\n")) {
			continue
		}
		rel, _ := filepath.Rel(root, file)
		t.Run(rel, func(t *testing.T) {
			work := t.TempDir()
			// fixtures/, the test data under pkg/ and docs/examples/ are read by the examples.
			for _, d := range []string{"fixtures", "pkg", "docs"} {
				if err := os.Symlink(filepath.Join(root, d), filepath.Join(work, d)); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(work)
			out, n, problems := runConsoleBlocks(t, rel, string(src))
			for _, p := range problems {
				t.Error(p)
			}
			blocks += n
			if out != string(src) {
				if *updateDocs {
					if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				} else {
					t.Errorf("%s: a console block's output differs (make docs-update rewrites it)\n%s", rel, firstDiff(string(src), out))
				}
			}
		})
	}
	if blocks == 0 {
		t.Fatal("no console block found: the test would prove nothing")
	}
}

// A block that shows an ext3replay command with its output ("$ ext3replay" lines) is executed
// only as a ```console block: any other fence holding such a line is refused, so no example
// escapes the test above. (Transcripts of benchmark scripts, whose figures vary, are not meant.)
func TestDocsNoUnexecutedOutput(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, bad := range unexecutedBlocks(string(src)) {
			t.Errorf("%s:%d: a ``` block shows a command with its output but is not a ```console block (the docs test runs only those)", rel, bad)
		}
	}
}

// unexecutedBlocks returns the first lines of the fenced blocks of md that are not console
// blocks but hold a "$ ext3replay" prompt line.
func unexecutedBlocks(md string) []int {
	var bad []int
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		console := lines[i] == "```console"
		start := i
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			if !console && strings.HasPrefix(strings.TrimSpace(lines[i]), "$ ext3replay ") {
				bad = append(bad, start+1)
				for i < len(lines) && !strings.HasPrefix(lines[i], "```") {
					i++
				}
				break
			}
		}
	}
	return bad
}

// The docs test itself: a block whose shown output differs from what the command prints is
// rewritten (so the comparison fails), a cut block ("...") compares only its first lines, and
// a block that is not a console block but shows a prompt is found.
func TestDocsTestCatchesDrift(t *testing.T) {
	needFixture(t)
	log := filepath.Join(fixtureDir, "io.log.zst")
	_, info := run(t, "log", "info", log)
	first := strings.SplitAfter(info, "\n")[0]
	good := "text\n```console\n$ ext3replay log info " + log + "\n" + info + "```\n"
	if out, n, p := runConsoleBlocks(t, "good.md", good); out != good || n != 1 || len(p) > 0 {
		t.Errorf("an up-to-date block was rewritten (%d blocks):\n%s", n, firstDiff(good, out))
	}
	cut := "```console\n$ ext3replay log info " + log + "\n" + first + "...\n```\n"
	if out, _, p := runConsoleBlocks(t, "cut.md", cut); out != cut || len(p) > 0 {
		t.Errorf("a cut block was rewritten:\n%s", firstDiff(cut, out))
	}
	stale := strings.Replace(good, "records:     151", "records:     150", 1)
	if stale == good {
		t.Fatalf("log info output has no 'records:     151' line:\n%s", info)
	}
	out, _, _ := runConsoleBlocks(t, "stale.md", stale)
	if out == stale || !strings.Contains(firstDiff(stale, out), "records:     150") {
		t.Errorf("a stale block was not caught: %s", firstDiff(stale, out))
	}
	lines := strings.SplitAfter(strings.TrimSuffix(info, "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n") + "\n"
	}
	if _, ok := excerptMatches([]string{"...\n", lines[2], "...\n", lines[5], lines[6], "...\n"}, lines); !ok {
		t.Error("an excerpt of the output was refused")
	}
	if _, ok := excerptMatches([]string{"...\n", lines[5], "...\n", lines[2], "...\n"}, lines); ok {
		t.Error("an excerpt out of order was accepted")
	}
	if _, ok := excerptMatches([]string{lines[1], "...\n"}, lines); ok {
		t.Error("an excerpt not starting at the output's first line was accepted without a leading ...")
	}
	excerpt := "```console\n$ ext3replay log info " + log + "\n...\nrecords:     151\n...\n```\n"
	if out, _, p := runConsoleBlocks(t, "excerpt.md", excerpt); out != excerpt || len(p) > 0 {
		t.Errorf("an excerpt block was rewritten or refused %v:\n%s", p, firstDiff(excerpt, out))
	}
	staleExcerpt := strings.Replace(excerpt, "151", "150", 1)
	if out, _, p := runConsoleBlocks(t, "excerpt.md", staleExcerpt); out != staleExcerpt || len(p) != 1 || !strings.Contains(p[0], "records:     150") {
		t.Errorf("a stale excerpt: problems %q (want one naming its line), rewritten: %v", p, out != staleExcerpt)
	}
	md := "a\n```\n$ ext3replay log info x\nout\n```\n```sh\next3replay analyze a b\n```\n```console\n$ ext3replay x\n```\n"
	if got := unexecutedBlocks(md); len(got) != 1 || got[0] != 2 {
		t.Errorf("unexecuted blocks at lines %v, want [2]", got)
	}
}

// runConsoleBlocks runs the commands of every console block of md and returns md with the
// output each printed in place of the one shown.
func runConsoleBlocks(t *testing.T, name, md string) (string, int, []string) {
	var problems []string
	var out strings.Builder
	lines := strings.SplitAfter(md, "\n")
	blocks := 0
	for i := 0; i < len(lines); i++ {
		out.WriteString(lines[i])
		if lines[i] != "```console\n" {
			continue
		}
		blocks++
		// The block's lines up to the closing fence.
		j := i + 1
		for j < len(lines) && strings.TrimRight(lines[j], "\n") != "```" {
			j++
		}
		if j == len(lines) {
			t.Fatalf("%s:%d: console block not closed", name, i+1)
		}
		body := lines[i+1 : j]
		for k := 0; k < len(body); {
			cmdLine := strings.TrimRight(body[k], "\n")
			if !strings.HasPrefix(cmdLine, "$ ext3replay ") {
				t.Fatalf("%s:%d: a console block line %q: want \"$ ext3replay ...\" followed by its output", name, i+2+k, cmdLine)
			}
			// The shown output: up to the next command.
			e := k + 1
			for e < len(body) && !strings.HasPrefix(body[e], "$ ") {
				e++
			}
			shown := body[k+1 : e]
			cut := len(shown) > 0 && strings.TrimRight(shown[len(shown)-1], "\n") == "..."
			excerpt := false
			for _, l := range shown[:max(len(shown)-1, 0)] {
				excerpt = excerpt || strings.TrimRight(l, "\n") == "..."
			}
			// A trailing comment is kept as it is; `; echo "exit $?"` shows the exit status
			// as the last output line.
			command := strings.TrimPrefix(cmdLine, "$ ext3replay ")
			if c := strings.Index(command, "  #"); c >= 0 {
				command = command[:c]
			}
			command, showExit := strings.CutSuffix(strings.TrimSpace(command), `; echo "exit $?"`)
			args, err := splitArgs(command)
			if err != nil {
				t.Fatalf("%s:%d: %v", name, i+2+k, err)
			}
			var stdout, stderr bytes.Buffer
			code := executeArgs(args, &stdout, &stderr)
			if code >= exitUsage {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: exit %d: %s", name, i+2+k, cmdLine, code, stderr.String()))
			}
			if showExit {
				if b := stdout.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
					stdout.WriteByte('\n')
				}
				fmt.Fprintf(&stdout, "exit %d\n", code)
			}
			got := strings.SplitAfter(stdout.String(), "\n")
			if got[len(got)-1] == "" {
				got = got[:len(got)-1]
			}
			if excerpt {
				// Lines picked from the output: they must be there, in this order, "..." standing
				// for lines left out. Not rewritten by -update: a stale excerpt is fixed by hand.
				if l, ok := excerptMatches(shown, got); !ok {
					problems = append(problems, fmt.Sprintf("%s:%d: %s: the excerpt's line %q is not in the output where it is shown (fix it by hand; -update rewrites only whole or cut blocks)", name, i+2+k, cmdLine, strings.TrimRight(l, "\n")))
				}
				got = shown
			} else if cut {
				if n := len(shown) - 1; len(got) > n {
					got = append(got[:n:n], "...\n")
				}
			}
			out.WriteString(body[k])
			for _, g := range got {
				out.WriteString(g)
			}
			if len(got) > 0 && !strings.HasSuffix(got[len(got)-1], "\n") {
				out.WriteString("\n")
			}
			k = e
		}
		out.WriteString(lines[j])
		i = j
	}
	return out.String(), blocks, problems
}

// excerptMatches reports whether shown (lines of the output with "..." for runs of lines left
// out, at the start, between or at the end) is an excerpt of got, and else the first shown line
// that could not be placed.
func excerptMatches(shown, got []string) (string, bool) {
	var match func(s, g int) bool
	deepest := -1 // the furthest shown line that failed to match: the one to name
	match = func(s, g int) bool {
		if s == len(shown) {
			return g == len(got)
		}
		if strings.TrimRight(shown[s], "\n") == "..." {
			for k := g; k <= len(got); k++ {
				if match(s+1, k) {
					return true
				}
			}
			return false
		}
		if g < len(got) && strings.TrimRight(shown[s], "\n") == strings.TrimRight(got[g], "\n") {
			return match(s+1, g+1)
		}
		deepest = max(deepest, s)
		return false
	}
	if match(0, 0) {
		return "", true
	}
	if deepest < 0 {
		return "(the end of the output)", false
	}
	return shown[deepest], false
}

// splitArgs splits a command line as a shell would for plain words and '...' or "..." quoting;
// anything else a shell would interpret (pipes, redirections, variables) is refused.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unclosed quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case strings.IndexByte("|<>;&$`\\*?", c) >= 0:
			return nil, fmt.Errorf("%q: only plain ext3replay commands can be run (found %q)", s, c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// firstDiff names the first line where the docs (want) and the commands' output (got) part.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  docs:    %q\n  printed: %q", i+1, wl, gl)
		}
	}
	return ""
}
