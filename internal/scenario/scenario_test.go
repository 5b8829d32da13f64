package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNeeds(t *testing.T) {
	dir := t.TempDir()
	if n, err := Needs(dir); n != "" || err != nil {
		t.Fatalf("no scenario.env: %q, %v", n, err)
	}
	env := "# comment NEEDS=x\nFS_TYPE=ext4\nMOUNT_OPTS=\"data=journal,commit=5\"\nNEEDS='ext4-resolver'\n"
	if err := os.WriteFile(filepath.Join(dir, "scenario.env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Env(dir)
	if err != nil || e["FS_TYPE"] != "ext4" || e["MOUNT_OPTS"] != "data=journal,commit=5" || e["NEEDS"] != "ext4-resolver" || len(e) != 3 {
		t.Fatalf("Env = %v, %v", e, err)
	}
	// Every committed scenario.env parses.
	dirs, _ := filepath.Glob("../../fixtures/real/*")
	for _, d := range dirs {
		if _, err := Needs(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}
