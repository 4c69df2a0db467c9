package admin

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Every YAML form of a secret value is hidden, on the parsed tree: the
// output keeps the file's lines (problems are shown by line), still
// parses, and decodes to the same document with each secret replaced by
// "<redacted>" and each URL's credentials elided.
func TestRedactSourceEveryYAMLForm(t *testing.T) {
	keys := map[string]bool{"secret": true, "headers": true}
	for _, c := range []struct {
		name, src string
		want      any // the redacted document, decoded
	}{
		{"plain", "secret: hunter1\nurl: https://x/\n", map[string]any{"secret": "<redacted>", "url": "https://x/"}},
		{"double quoted, escaped quote", "secret: \"a \\\" hunter2\"\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
		{"single quoted", "secret: 'it''s hunter3'\n", map[string]any{"secret": "<redacted>"}},
		{"folded block", "secret: >-\n  hunter4a\n  hunter4b\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
		{"literal block", "x:\n  secret: |\n    hunter5a\n\n    hunter5b\n  b: 1\n", map[string]any{"x": map[string]any{"secret": "<redacted>", "b": 1}}},
		{"multi-line plain", "secret: hunter6a\n  hunter6b\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
		{"multi-line quoted", "secret: \"hunter7a\n  hunter7b\"\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
		{"complex key", "? secret\n: hunter8\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
		{"quoted key", "\"secret\": hunter9\n", map[string]any{"secret": "<redacted>"}},
		{"block map under a secret key", "headers:\n  Authorization: Bearer hunter10\n\n  X-Two: hunter11\nb: 1\n",
			map[string]any{"headers": map[string]any{"Authorization": "<redacted>", "X-Two": "<redacted>"}, "b": 1}},
		{"flow map", "a: { url: \"https://y/\", secret: hunter12 }\nb: 1\n", map[string]any{"a": map[string]any{"url": "https://y/", "secret": "<redacted>"}, "b": 1}},
		{"nested flow", "- webhook: { url: \"https://z/\", headers: { Authorization: \"Bearer hunter13\", X-Two: 'hunter14' } }\n",
			[]any{map[string]any{"webhook": map[string]any{"url": "https://z/", "headers": map[string]any{"Authorization": "<redacted>", "X-Two": "<redacted>"}}}}},
		{"multi-line flow", "a: {secret: hunter15,\n  b: c}\nd: 1\n", map[string]any{"a": map[string]any{"secret": "<redacted>", "b": "c"}, "d": 1}},
		{"anchor and alias", "x: &s hunter16\nsecret: *s\n", map[string]any{"x": "<redacted>", "secret": "<redacted>"}},
		{"tagged", "secret: !!str hunter17\n", map[string]any{"secret": "<redacted>"}},
		{"URL password", "url: https://user:hunter18@crm.example/hook\n", map[string]any{"url": "https://crm.example/hook"}},
		{"URL token", "url: \"https://crm.example/hook?token=hunter19&x=1\"\n", map[string]any{"url": "https://crm.example/hook?…"}},
		{"URL in text", "message: 'see https://u:hunter20@h/p for more'\n", map[string]any{"message": "see https://h/p for more"}},
		{"comment after", "secret: hunter21 # the CRM's\nb: 1\n", map[string]any{"secret": "<redacted>", "b": 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := strings.Split(strings.TrimRight(c.src, "\n"), "\n")
			out := redactSource(lines, keys)
			got := strings.Join(out, "\n")
			if strings.Contains(got, "hunter") {
				t.Errorf("a secret is shown:\n%s", got)
			}
			if len(out) != len(lines) {
				t.Errorf("%d lines, want %d:\n%s", len(out), len(lines), got)
			}
			var doc any
			if err := yaml.Unmarshal([]byte(got), &doc); err != nil {
				t.Fatalf("the redacted source does not parse: %v\n%s", err, got)
			}
			if !yamlEqual(doc, c.want) {
				t.Errorf("redacted to %#v, want %#v:\n%s", doc, c.want, got)
			}
		})
	}
}

// yamlEqual compares decoded YAML values, ints as ints.
func yamlEqual(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if !yamlEqual(v, bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !yamlEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// Source that no longer parses is not shown, and an alias bomb costs one
// walk of its nodes.
func TestRedactSourceUnparsableAndBombs(t *testing.T) {
	out := redactSource([]string{"secret: [hunter", "b: 1"}, map[string]bool{"secret": true})
	if got := strings.Join(out, "\n"); strings.Contains(got, "hunter") || len(out) != 2 {
		t.Fatalf("unparsable source shown: %q", out)
	}
	bomb := []string{"a: &a [x, x, x, x, x, x, x, x, x]"}
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb = append(bomb, n+": &"+n+" [*"+prev+", *"+prev+", *"+prev+", *"+prev+", *"+prev+", *"+prev+", *"+prev+", *"+prev+", *"+prev+"]")
		prev = n
	}
	bomb = append(bomb, "secret: *"+prev)
	out = redactSource(bomb, map[string]bool{"secret": true})
	if len(out) != len(bomb) || !strings.Contains(out[0], "<redacted>") {
		t.Fatalf("bomb: %q", out)
	}
}
