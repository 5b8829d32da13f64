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
// line is "..." shows only the first lines of the output. Commands run in a temporary
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
			if err := os.Symlink(filepath.Join(root, "fixtures"), filepath.Join(work, "fixtures")); err != nil {
				t.Fatal(err)
			}
			t.Chdir(work)
			out, n := runConsoleBlocks(t, rel, string(src))
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

// runConsoleBlocks runs the commands of every console block of md and returns md with the
// output each printed in place of the one shown.
func runConsoleBlocks(t *testing.T, name, md string) (string, int) {
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
				t.Errorf("%s:%d: %s: exit %d: %s", name, i+2+k, cmdLine, code, stderr.String())
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
			if cut {
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
	return out.String(), blocks
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
