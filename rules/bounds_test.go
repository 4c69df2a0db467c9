package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

// testdata/aliasbomb-N.yaml nest N levels of nine aliases each ("billion
// laughs") in a log action's fields: 9^N strings when expanded, in a few
// hundred bytes. cmd/friendflow's tests run the binary on them.
func TestAliasBombIsRefused(t *testing.T) {
	for _, levels := range []int{7, 9} {
		t.Run(fmt.Sprint(levels), func(t *testing.T) {
			data, err := os.ReadFile(fmt.Sprintf("testdata/aliasbomb-%d.yaml", levels))
			if err != nil {
				t.Fatal(err)
			}
			// What the refusal costs, measured in this process: the
			// expansion it prevents took 700 MB for 7 levels.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got := problems(t, map[string]string{"r.yaml": string(data)})
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("refusing the file allocated %d MiB; want < 16 MiB", alloc>>20)
			}
			// a to e stand for 9 + 9² + … + 9⁵ strings; the first alias
			// to e after them passes 100 000 nodes.
			want := "r.yaml:12:16: the file has more than 100000 YAML nodes with its aliases (*name) expanded"
			if len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Fatalf("problems = %q; want %s…", got, want)
			}
		})
	}
}

func TestYAMLAliasLimits(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"self-reference", "rules: &r [*r]\n", "r.yaml:1:12: alias *r refers to a value that contains it"},
		{"nested self-reference", "rules:\n  - &x {name: a, actions: [{log: {message: hi, fields: {f: [*x]}}}]}\n",
			"r.yaml:2:61: alias *x refers to a value that contains it"},
		{"deep", "x:\n  a: &a [1]\n  b: &b [*a]\n  c: &c [*b]\n  d: &d [*c]\n  e: &e [*d]\n  f: &f [*e]\n  g: [*f]\nrules: []\n",
			"r.yaml:8:7: aliases nested 6 deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, map[string]string{"r.yaml": tc.file})
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("problems = %q; want %s…", got, tc.want)
			}
		})
	}
}

// Aliases within the limits work as before, and a template reached
// through many aliases is compiled once.
func TestYAMLAliasesWithinLimits(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: a
    actions:
      - log: &msg {message: "hi ${ To_Account }"}
      - log: *msg
      - log: {message: x, fields: &f {a: &v "${ From_Account }", b: *v, c: *v}}
  - name: b
    actions: [{log: {message: y, fields: *f}}]
`))
	ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob"})
	if len(errs) != 0 || len(ms) != 2 || ms[0].Actions[1].Params["message"] != "hi bob" ||
		ms[1].Actions[0].Params["fields"].(map[string]any)["c"] != "alice" {
		t.Fatalf("matches %+v errors %v", ms, errs)
	}
}

func TestRuleFileSizeLimits(t *testing.T) {
	rule := "rules:\n  - name: %s\n    actions: [{log: {message: '%s'}}]\n"
	dir := writeFiles(t, map[string]string{
		"a.yaml": fmt.Sprintf(rule, "a", strings.Repeat("x", 600)),
		"b.yaml": fmt.Sprintf(rule, "b", strings.Repeat("x", 600)),
	})
	load := func(o Options) string {
		o.Registry = testRegistry(t)
		_, err := Load(dir, o)
		if err == nil {
			return ""
		}
		return strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
	}
	if got := load(Options{}); got != "" {
		t.Fatalf("defaults: %s", got)
	}
	if got, want := load(Options{MaxFileBytes: 512}), "a.yaml: file is larger than 512 bytes, the limit of one rule file; split it"; !strings.HasPrefix(got, want) {
		t.Errorf("MaxFileBytes: %q; want %q", got, want)
	}
	if got, want := load(Options{MaxSetBytes: 1 << 10}), "the rule files add up to more than 1 KiB"; !strings.Contains(got, want) {
		t.Errorf("MaxSetBytes: %q; want %q", got, want)
	}
	// A single file too.
	if _, err := Load(filepath.Join(dir, "a.yaml"), Options{Registry: testRegistry(t), MaxFileBytes: 100}); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("single file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("rules: []\n"+strings.Repeat("# padding\n", DefaultMaxFileBytes/10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big, Options{Registry: testRegistry(t)}); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("default limit: %v", err)
	}
}

// amplifiedFile is issue 22's file: 66 KB of YAML within every node and
// depth limit, whose one long anchored string, aliased 99 × 99 times in a
// log action's fields, stands for 590 MB.
func amplifiedFile() string {
	var b strings.Builder
	b.WriteString("x:\n  s: &s " + strings.Repeat("x", 60_000) + "\n  l1: &l1 [")
	for i := range 99 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*s")
	}
	b.WriteString("]\nrules:\n  - name: r\n    actions:\n      - log:\n          message: hi\n          fields:\n")
	for i := range 99 {
		fmt.Fprintf(&b, "            f%d: *l1\n", i)
	}
	return b.String()
}

func TestAmplifiedFileIsRefusedByItsBytes(t *testing.T) {
	data := amplifiedFile()
	if len(data) < 60_000 || len(data) > 70_000 {
		t.Fatalf("the file has %d bytes", len(data))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := problems(t, map[string]string{"r.yaml": data})
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("refusing the file allocated %d MiB; want < 16 MiB", alloc>>20)
	}
	// x's anchored values hold 6 MB; the first alias in the fields passes
	// 8 MiB.
	want := fmt.Sprintf("r.yaml:10:17: the file's text passes %d bytes with its aliases (*name) expanded", DefaultMaxExpandedBytes)
	if len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("problems = %q; want %s…", got, want)
	}
}
