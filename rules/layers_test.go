package rules

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// No Go file under rules, test or not, imports a floor above it (engine,
// cmd); and fsnotify is imported by rules/reload alone, the rule language
// knowing nothing of files changing.
func TestRulesImportsPointDown(t *testing.T) {
	const module = "github.com/friendflow/friendflow/"
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("..", path)
		rel = filepath.ToSlash(rel)
		for _, is := range f.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			switch {
			case strings.HasPrefix(rel, "rules/") && (strings.HasPrefix(imp, module+"engine") || strings.HasPrefix(imp, module+"cmd")):
				t.Errorf("%s imports %s, a floor above rules", rel, imp)
			case imp == "github.com/fsnotify/fsnotify" && !strings.HasPrefix(rel, "rules/reload/"):
				t.Errorf("%s imports fsnotify; only rules/reload watches files", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
