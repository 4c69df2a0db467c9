package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/rules"
)

const schemaPath = "../../docs/schema/rules.schema.json"

// schemaHeader is the first line of every example rule file: editors with
// the YAML language server complete and check the file with the schema.
const schemaHeader = "# yaml-language-server: $schema=../../docs/schema/rules.schema.json"

// compileSchema compiles the committed schema with a maintained validator,
// after checking it against the draft 2020-12 meta-schema itself.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	meta, err := c.Compile(rules.SchemaDialect)
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Validate(doc); err != nil {
		t.Fatalf("the schema is not a valid draft 2020-12 schema: %v", err)
	}
	if err := c.AddResource("rules.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("rules.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// validateYAML checks a rule file against the schema as an editor would:
// the YAML as JSON data.
func validateYAML(sch *jsonschema.Schema, data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// lintFile loads data as one rule file, as `friendflow lint` does.
func lintFile(t *testing.T, data []byte) error {
	t.Helper()
	file := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadPaths([]string{file}, func(string) string { return "" }, false)
	return err
}

// The committed schema is what `friendflow schema` prints (go generate
// writes it), and a valid draft 2020-12 schema.
func TestSchemaCommitted(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"schema"}, &out, os.Stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("schema: exit %d", code)
	}
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, out.Bytes()) {
		t.Fatal("docs/schema/rules.schema.json differs from `friendflow schema`; run go generate ./...")
	}
	compileSchema(t)
}

// Every key, action parameter and event field has its description.
func TestSchemaDescribesEverything(t *testing.T) {
	raw, err := rules.Schema(newRegistry(slog.New(slog.DiscardHandler), nil))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for name, p := range props {
				if d, _ := p.(map[string]any)["description"].(string); strings.TrimSpace(d) == "" {
					t.Errorf("%s.properties.%s has no description", path, name)
				}
			}
		}
		for k, sub := range m {
			walk(path+"."+k, sub)
			if list, ok := sub.([]any); ok {
				for _, it := range list {
					walk(path+"."+k+"[]", it)
				}
			}
		}
	}
	walk("$", doc)
	for _, want := range []string{`"im.send"`, `"params.webhook"`, `"ForceFlag"`, `"max_backoff"`, `"FF004"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("the schema lacks %s", want)
		}
	}
}

// ruleFiles returns every rule file the repository ships: the examples,
// the rule files in the Kubernetes ConfigMaps and the YAML blocks of the
// documentation that hold rules.
func ruleFiles(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, b := range examples.RuleFiles() { // the shipped ones, not an operator's
		out["../../examples/rules/"+name] = b
	}
	manifests, _ := filepath.Glob("../../examples/kubernetes/*.yaml")
	for _, f := range manifests {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var obj struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
			}
			if dec.Decode(&obj) != nil {
				break
			}
			for name, body := range obj.Data {
				if obj.Kind == "ConfigMap" && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) && strings.Contains(body, "rules:") {
					out[f+":"+name] = []byte(body)
				}
			}
		}
	}
	block := regexp.MustCompile("(?s)```yaml\n(rules:.*?)```")
	for _, f := range []string{"../../README.md", "../../docs/rules.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(b, -1) {
			out[f+":block"+strings.Repeat("'", i)] = m[1]
		}
	}
	return out
}

// Every rule file the repository ships passes the schema; every example
// starts with the schema comment and lints clean; and what the schema
// rejects, lint rejects too.
func TestSchemaAcceptsShippedRules(t *testing.T) {
	sch := compileSchema(t)
	files := ruleFiles(t)
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			if err := validateYAML(sch, data); err != nil {
				t.Errorf("schema: %v", err)
				if lintFile(t, data) == nil {
					t.Error("the schema rejects a file that lint accepts")
				}
			}
			if strings.Contains(name, "examples/rules/") {
				if first, _, _ := strings.Cut(string(data), "\n"); first != schemaHeader {
					t.Errorf("first line %q, want %q", first, schemaHeader)
				}
				if err := lintFile(t, data); err != nil {
					t.Errorf("lint: %v", err)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join("../../examples/rules", strings.TrimPrefix(schemaHeader, "# yaml-language-server: $schema="))); err != nil {
		t.Errorf("the examples' $schema path does not resolve: %v", err)
	}
}

// Bad rule files: the schema rejects each, so an editor shows it at once,
// and lint rejects each too, so the schema never refuses what friendflow
// would serve.
func TestSchemaRejectsWhatLintRejects(t *testing.T) {
	sch := compileSchema(t)
	rule := func(body string) string { return "rules:\n  - name: r\n" + body }
	for _, tt := range []struct{ name, file string }{
		{"no rules key", "rule: []\n"},
		{"rules not a list", "rules: {name: r}\n"},
		{"unknown rule key", rule("    whn: ForceFlag == 1\n")},
		{"missing name", "rules:\n  - when: ForceFlag == 1\n"},
		{"empty name", "rules:\n  - name: \"\"\n"},
		{"enabled not a bool", rule("    enabled: \"yes\"\n")},
		{"when a number", rule("    when: 1\n")},
		{"unknown command", rule("    on: Sns.CallbackFriendAd\n")},
		{"empty on", rule("    on: []\n")},
		{"once without key", rule("    once: {for: 1h}\n")},
		{"once for a bare number", rule("    once: {key: From_Account, for: 60}\n")},
		{"unknown action kind", rule("    actions:\n      - sms: {to: bob}\n")},
		{"two kinds in one action", rule("    actions:\n      - log: {}\n        webhook: {url: https://x.example}\n")},
		{"no kind in an action", rule("    actions:\n      - delay: 1s\n")},
		{"unknown parameter", rule("    actions:\n      - log: {mesage: hi}\n")},
		{"missing required parameter", rule("    actions:\n      - webhook: {method: POST}\n")},
		{"parameter not in enum", rule("    actions:\n      - log: {level: loud}\n")},
		{"parameter of the wrong type", rule("    actions:\n      - webhook: {url: https://x.example, timeout: 5}\n")},
		{"params not a mapping", rule("    actions:\n      - log: hello\n")},
		{"delay a bare number", rule("    actions:\n      - log: {}\n        delay: 60\n")},
		{"retry attempts 0", rule("    actions:\n      - log: {}\n        retry: {attempts: 0}\n")},
		{"unknown retry key", rule("    actions:\n      - log: {}\n        retry: {tries: 3}\n")},
		{"test without match", rule("    tests:\n      - name: t\n")},
		{"test event unknown field", rule("    tests:\n      - name: t\n        match: true\n        event: {Form_Account: a}\n")},
		{"test event int as text", rule("    tests:\n      - name: t\n        match: true\n        event: {ForceFlag: \"1\"}\n")},
		{"test match not a bool", rule("    tests:\n      - name: t\n        match: \"yes\"\n")},
		{"test decision unknown", rule("    on: Sns.CallbackPrevFriendAdd\n    tests:\n      - name: t\n        match: true\n        decision: maybe\n")},
		{"test action two kinds", rule("    tests:\n      - name: t\n        match: true\n        actions:\n          - {log: {}, webhook: {}}\n")},
		{"lint ignore unknown code", rule("    lint: {ignore: [FF999]}\n")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(sch, []byte(tt.file)); err == nil {
				t.Errorf("the schema accepts:\n%s", tt.file)
			}
			if err := lintFile(t, []byte(tt.file)); err == nil {
				t.Errorf("lint accepts what the schema rejects:\n%s", tt.file)
			}
		})
	}
}
