package ops

import (
	"os/exec"
	"strings"
	"testing"
)

// The op core is imported by the resolver and the pipeline; the table renderers live in
// pkg/ops/render so that those packages do not pull in tablewriter and its colour stack.
func TestCoreDoesNotImportTablewriter(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not in PATH")
	}
	cmd := exec.Command(gobin, "list", "-deps", ".", "../resolver", "../analysis")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages; the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		if strings.Contains(d, "tablewriter") || strings.Contains(d, "fatih/color") || strings.HasSuffix(d, "/ops/render") {
			t.Errorf("the op core, resolver or analysis depends on %s", d)
		}
	}
}
