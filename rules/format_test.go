package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples"
)

// TestFormatKeepsShippedFilesAndIsIdempotent: the shipped rule files are
// already in the canonical layout (fmt changes nothing: CI runs fmt
// --check on them); on the test rule files, alias bombs included, a
// second fmt changes nothing.
func TestFormatKeepsShippedFilesAndIsIdempotent(t *testing.T) {
	for name, src := range examples.RuleFiles() {
		out, err := Format(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(out) != string(src) {
			t.Errorf("examples/rules/%s is not in fmt's layout; run friendflow fmt examples/rules\n%s", name, out)
		}
	}
	tests, _ := filepath.Glob("testdata/*.yaml")
	if len(tests) == 0 {
		t.Fatal("no test rule files")
	}
	for _, f := range tests {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		once, err := Format(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		twice, err := Format(once)
		if err != nil || string(twice) != string(once) {
			t.Errorf("%s: fmt is not idempotent (%v):\n%s\n---\n%s", f, err, once, twice)
		}
	}
}

// TestFormatLayout: the canonical layout from a messy file, comments and
// key order kept; quoted braces, quotes and block scalars are not layout.
func TestFormatLayout(t *testing.T) {
	src := `# head comment
rules:
- name: b   # line comment
  when:   ClientCmd == "x"
  actions:
      - log: {message: "a { b } c", level: info}
      - log: {message: 'it''s {x}', fields: {k: v}}
  description: |
    keep
      - this block
# about a
- name: a
  tests: [{name: t, event: {x: 1}}]
`
	want := `# head comment
rules:
  - name: b # line comment
    when: ClientCmd == "x"
    actions:
      - log: { message: "a { b } c", level: info }
      - log: { message: 'it''s {x}', fields: { k: v } }
    description: |
      keep
        - this block

  # about a
  - name: a
    tests: [{ name: t, event: { x: 1 } }]
`
	got, err := Format([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if again, _ := Format(got); string(again) != want {
		t.Fatalf("not idempotent:\n%s", again)
	}
	if _, err := Format([]byte("rules: [\n")); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("broken YAML: %v", err)
	}
}
