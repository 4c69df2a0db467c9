package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// sendKind is a test-only kind with one parameter of every type, a secret
// and a secret object field.
type sendKind struct{}

func (sendKind) Spec() actions.Spec {
	return actions.Spec{
		Name: "test.send",
		Params: []actions.Param{
			{Name: "to", Type: actions.String, Required: true},
			{Name: "count", Type: actions.Int},
			{Name: "timeout", Type: actions.Duration, Default: 5 * time.Second},
			{Name: "urgent", Type: actions.Bool, Default: false},
			{Name: "headers", Type: actions.StringMap},
			{Name: "token", Type: actions.String, Secret: true},
			{Name: "custom", Type: actions.Object, Fields: []actions.Param{
				{Name: "data", Type: actions.String, Required: true},
				{Name: "key", Type: actions.String, Secret: true},
			}},
			{Name: "body", Type: actions.Any},
		},
	}
}

func (sendKind) Do(context.Context, actions.Job, map[string]any) error { return nil }

// denyKind is a test-only synchronous kind (so only on the Prev commands).
type denyKind struct{}

func (denyKind) Spec() actions.Spec {
	return actions.Spec{
		Name:   "test.deny",
		Sync:   true,
		Params: []actions.Param{{Name: "code", Type: actions.Int, Required: true}},
	}
}

func (denyKind) Do(context.Context, actions.Job, map[string]any) error { return nil }

func testRegistry(t testing.TB) *actions.Registry {
	t.Helper()
	var reg actions.Registry
	for _, k := range []actions.Kind{&actions.Log{}, sendKind{}, denyKind{}} {
		if err := reg.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	return &reg
}

// writeFiles writes name -> content into a new temporary directory.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mustLoad loads the files and fails the test on any problem.
func mustLoad(t testing.TB, files map[string]string, opts ...func(*Options)) *Set {
	t.Helper()
	o := Options{Registry: testRegistry(t)}
	for _, f := range opts {
		f(&o)
	}
	s, err := Load(writeFiles(t, files), o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// problems loads the files, expects a *LoadError and returns its problems
// as "base:line:col: msg" lines, the directory stripped.
func problems(t testing.TB, files map[string]string) []string {
	t.Helper()
	dir := writeFiles(t, files)
	s, err := Load(dir, Options{Registry: testRegistry(t)})
	if err == nil {
		t.Fatalf("Load succeeded with %d rules; want problems", s.Len())
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error is %T, not *LoadError: %v", err, err)
	}
	out := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		out[i] = strings.TrimPrefix(p.String(), dir+string(filepath.Separator))
	}
	return out
}

// oneRule wraps rule YAML (indented by four spaces, starting with "- ")
// in a file.
func oneRule(body string) map[string]string {
	return map[string]string{"r.yaml": "rules:\n" + body}
}
