package rules

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// Several paths load as one set: files in the order given, a file named
// twice once, rule names unique across all of them.
func TestLoadPathsOneSet(t *testing.T) {
	a := writeFiles(t, map[string]string{"2.yaml": "rules:\n  - name: a2\n", "1.yaml": "rules:\n  - name: a1\n"})
	b := writeFiles(t, map[string]string{"b.yaml": "rules:\n  - name: b\n"})
	opts := Options{Registry: testRegistry(t)}
	set, err := LoadPaths([]string{filepath.Join(b, "b.yaml"), a, filepath.Join(a, "1.yaml")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range set.Files() {
		names = append(names, filepath.Base(f.Path))
	}
	if got := strings.Join(names, " "); got != "b.yaml 1.yaml 2.yaml" || set.Len() != 3 {
		t.Fatalf("files %q, %d rules", got, set.Len())
	}

	c := writeFiles(t, map[string]string{"c.yaml": "rules:\n  - name: a1\n"})
	_, err = LoadPaths([]string{a, c}, opts)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || !strings.Contains(le.Problems[0].Msg, `duplicate rule name "a1" (first defined at `+filepath.Join(a, "1.yaml")) {
		t.Fatalf("duplicate across paths: %v", err)
	}
	_, err = LoadPaths([]string{a, filepath.Join(c, "missing.yaml")}, opts)
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].File != filepath.Join(c, "missing.yaml") {
		t.Fatalf("a missing path: %v", err)
	}
}

func TestRunTestsMatching(t *testing.T) {
	set := mustLoad(t, oneRule("  - name: r\n    tests:\n      - name: one\n        match: true\n      - name: two\n        match: true\n"))
	var got []string
	for _, r := range set.RunTestsMatching(func(rule, test string) bool { return test == "two" }) {
		got = append(got, r.Rule+"/"+r.Test)
	}
	if len(got) != 1 || !strings.HasSuffix(got[0], "/two") {
		t.Fatalf("ran %v", got)
	}
	if n := len(set.RunTests()); n != 2 {
		t.Fatalf("RunTests ran %d", n)
	}
}
