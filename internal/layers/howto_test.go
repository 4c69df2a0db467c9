package layers

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHowTosNameRealCode keeps the how-tos of docs/architecture.md true
// to the code: every file they link to exists, and every identifier they
// name in backquotes (a function, type, table, test or flag of the
// recipe) is a word of some Go file, so a rename that leaves a recipe
// behind fails here.
func TestHowTosNameRealCode(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, howTo, ok := strings.Cut(string(doc), "\n## How to\n")
	if !ok {
		t.Fatal(`docs/architecture.md has no "## How to" section`)
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`).FindAllStringSubmatch(howTo, -1) {
		if _, err := os.Stat(filepath.Join(root, "docs", filepath.FromSlash(m[1]))); err != nil {
			t.Errorf("the how-tos link to %s: %v", m[1], err)
		}
	}
	var src strings.Builder
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != root {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".go") {
			b, err := os.ReadFile(p)
			src.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := src.String()
	names := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)*)`").FindAllStringSubmatch(howTo, -1)
	if len(names) < 20 {
		t.Fatalf("found %d names in the how-tos; the pattern is broken", len(names))
	}
	for _, m := range names {
		name := m[1][strings.LastIndex(m[1], ".")+1:]
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(code) {
			t.Errorf("the how-tos name %s, which no Go file of the module has", m[1])
		}
	}
}
