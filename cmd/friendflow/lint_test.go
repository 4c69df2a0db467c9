package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lint prints warnings and exits 0; --strict makes them fail it.
func TestLintWarnings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	rule := "rules:\n  - name: impossible\n    when: ForceFlag == 2\n"
	if err := os.WriteFile(file, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	noenv := func(string) string { return "" }
	var out, errOut bytes.Buffer
	if code := run([]string{"lint", dir}, &out, &errOut, noenv); code != 0 {
		t.Fatalf("lint exit %d; stdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	want := file + `:3:24: warning FF001: rule "impossible": when: ForceFlag is never 2: Tencent documents 0 or 1` + "\nok: 1 rules in 1 files, 1 warnings\n"
	if out.String() != want {
		t.Errorf("lint output:\n%s\nwant:\n%s", &out, want)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"lint", "--strict", dir}, &out, &errOut, noenv); code != 1 {
		t.Fatalf("lint --strict exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "1 warnings (--strict)") {
		t.Errorf("lint --strict stderr: %s", &errOut)
	}
}

// The examples lint clean even with --strict.
func TestLintExamplesStrict(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"lint", "--strict", "../../examples/rules"}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("lint --strict examples: exit %d\n%s%s", code, &out, &errOut)
	}
}
