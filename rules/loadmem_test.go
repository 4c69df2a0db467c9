package rules

import (
	"errors"
	"strings"
	"testing"
)

// Files held in memory load as the files of one directory would: in name
// order, each named by its name in problems; names that are not base
// names of rule files, and sets over the size limit, are refused.
func TestLoadFilesFromMemory(t *testing.T) {
	reg := testRegistry(t)
	rule := func(name string) []byte {
		return []byte("rules:\n  - name: " + name + "\n    actions:\n      - log: { message: hi }\n")
	}
	set, err := LoadFiles([]File{{Name: "b.yaml", Data: rule("second")}, {Name: "a.yml", Data: rule("first")}}, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if rs := set.Rules(); len(rs) != 2 || rs[0].Name != "first" || rs[1].Name != "second" {
		t.Fatalf("rules %+v", rs)
	}
	_, err = LoadFiles([]File{{Name: "r.yaml", Data: []byte("rules:\n  - name: x\n    when: From_Acount == 1\n    actions: [{log: {message: hi}}]\n")}}, Options{Registry: reg})
	var le *LoadError
	if !errors.As(err, &le) || le.Problems[0].File != "r.yaml" || le.Problems[0].Line != 3 {
		t.Fatalf("broken file: %v", err)
	}
	for _, files := range [][]File{
		{{Name: "../x.yaml", Data: rule("x")}},
		{{Name: "x.txt", Data: rule("x")}},
		{{Name: "x.yaml", Data: rule("x")}, {Name: "x.yaml", Data: rule("y")}},
		{{Name: "x.yaml", Data: []byte(strings.Repeat("#", 2<<10))}},
		nil,
	} {
		if _, err := LoadFiles(files, Options{Registry: reg, MaxFileBytes: 1 << 10}); !errors.As(err, &le) {
			t.Errorf("%d files: %v", len(files), err)
		}
	}
}
