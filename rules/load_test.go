package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

func TestLoadProblemsArePositionExact(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // each a prefix of the corresponding problem line
	}{
		{
			name:  "zero bytes",
			files: map[string]string{"a.yaml": ""},
			want:  []string{"a.yaml:1:1: file is empty; refusing to treat it as no rules"},
		},
		{
			name:  "only whitespace and comments",
			files: map[string]string{"a.yaml": "\n   \n# rules: soon\n\n"},
			want:  []string{"a.yaml:1:1: file is empty"},
		},
		{
			name:  "rules without a list",
			files: map[string]string{"a.yaml": "# half written\nrules:\n"},
			want:  []string{"a.yaml:2:1: rules is empty; refusing to treat it as no rules"},
		},
		{
			name:  "rules not a list",
			files: map[string]string{"a.yaml": "rules: {name: x}\n"},
			want:  []string{"a.yaml:1:8: rules: want a list of rules, got a mapping"},
		},
		{
			name:  "unknown top-level key",
			files: map[string]string{"a.yaml": "rules: []\nrulez: []\n"},
			want:  []string{`a.yaml:2:1: file: unknown key "rulez"; did you mean "rules"?`},
		},
		{
			name:  "invalid yaml",
			files: map[string]string{"a.yaml": "rules:\n  - name: a\n   when: x\n"},
			want:  []string{"a.yaml:3:1: invalid YAML: "},
		},
		{
			name:  "invalid yaml without a line from the parser",
			files: map[string]string{"a.yaml": "rules:\n  - name: a\n    when: a: b\n"},
			want:  []string{"a.yaml:3:1: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name:  "an unclosed flow list is reported on its line",
			files: map[string]string{"a.yaml": "rules:\n  - name: a\n    actions:\n      - log:\n          message: [hi\n          level: warn\n  - name: b\n"},
			want:  []string{"a.yaml:5:1: invalid YAML: did not find expected ',' or ']'"},
		},
		{
			name:  "second document",
			files: map[string]string{"a.yaml": "rules: []\n---\nrules: []\n"},
			want:  []string{"a.yaml:3:1: a second YAML document in one file"},
		},
		{
			name: "unknown rule key with suggestion",
			files: oneRule(`  - name: a
    whn: "true"
`),
			want: []string{`r.yaml:3:5: rule "a": unknown key "whn"; did you mean "when"?`},
		},
		{
			name: "duplicate key",
			files: oneRule(`  - name: a
    when: "true"
    when: "false"
`),
			want: []string{`r.yaml:4:5: rule "a": duplicate key "when"`},
		},
		{
			name:  "missing name",
			files: oneRule("  - when: \"true\"\n"),
			want:  []string{"r.yaml:2:5: rule: missing required key name"},
		},
		{
			name: "duplicate names across files",
			files: map[string]string{
				"a.yaml": "rules:\n  - name: greet\n",
				"b.yaml": "rules:\n  - name: other\n  - name: greet\n",
			},
			want: []string{`b.yaml:3:11: duplicate rule name "greet" (first defined at `},
		},
		{
			name: "unknown command",
			files: oneRule(`  - name: a
    on: [Sns.CallbackFriendAdd, Sns.CallbackFriendAd]
`),
			want: []string{`r.yaml:3:33: rule "a": unknown command "Sns.CallbackFriendAd"; did you mean "Sns.CallbackFriendAdd"?`},
		},
		{
			name: "empty on",
			files: oneRule(`  - name: a
    on: []
`),
			want: []string{`r.yaml:3:9: rule "a": on is an empty list`},
		},
		{
			name: "misspelt field in when, plain scalar",
			files: oneRule(`  - name: a
    when: ClientCmd == "x" && Form_Account == "y"
`),
			want: []string{`r.yaml:3:31: rule "a": when: unknown name Form_Account; did you mean From_Account?`},
		},
		{
			name: "type mismatch in when, quoted scalar",
			files: oneRule(`  - name: a
    when: 'ForceFlag == "1"'
`),
			want: []string{`r.yaml:3:22: rule "a": when: invalid operation: == (mismatched types int and string)`},
		},
		{
			name: "non-bool when",
			files: oneRule(`  - name: a
    when: From_Account
`),
			want: []string{`r.yaml:3:11: rule "a": when: expected bool, but got string`},
		},
		{
			name: "misuse of env() in a literal block",
			files: oneRule(`  - name: a
    when: |
      ClientCmd == "x" &&
        env(42) == "y"
`),
			want: []string{`r.yaml:5:13: rule "a": when: cannot use int as argument (type string) to call env`},
		},
		{
			name: "escapes in a double-quoted scalar fall back to the scalar",
			files: oneRule(`  - name: a
    when: "ClientCmd == \"x\" && Form_Account == \"y\""
`),
			want: []string{`r.yaml:3:11: rule "a": when: unknown name Form_Account`},
		},
		{
			name: "enabled not a bool",
			files: oneRule(`  - name: a
    enabled: "yes please"
`),
			want: []string{`r.yaml:3:14: rule "a": enabled: want true or false, got the string "yes please"`},
		},
		{
			name: "once key not a string",
			files: oneRule(`  - name: a
    once: {key: PairIndex, for: 1h}
`),
			want: []string{`r.yaml:3:17: rule "a": once: key: expected string, but got int`},
		},
		{
			name: "once bad duration and unknown key",
			files: oneRule(`  - name: a
    once:
      key: From_Account
      for: 3 days
      ttl: 1h
`),
			want: []string{
				`r.yaml:5:12: rule "a": once: for: invalid duration "3 days"`,
				`r.yaml:6:7: rule "a": once: unknown key "ttl"`,
			},
		},
		{
			name: "unknown action kind",
			files: oneRule(`  - name: a
    actions:
      - lgo: {message: hi}
`),
			want: []string{`r.yaml:4:9: rule "a": action 1: unknown action kind "lgo"; did you mean "log"?`},
		},
		{
			name: "two kinds in one action item",
			files: oneRule(`  - name: a
    actions:
      - log: {}
        test.send: {to: x}
`),
			want: []string{`r.yaml:5:9: rule "a": action 1: two action kinds in one item (log and test.send)`},
		},
		{
			name: "action without a kind",
			files: oneRule(`  - name: a
    actions:
      - delay: 1m
`),
			want: []string{`r.yaml:4:9: rule "a": action 1: no action kind (known: log, test.deny, test.send)`},
		},
		{
			name: "unknown parameter points at its key",
			files: oneRule(`  - name: a
    actions:
      - log:
          message: hi
          colour: red
`),
			want: []string{`r.yaml:6:11: rule "a": action 1 (log): colour: unknown parameter`},
		},
		{
			name: "bad enum value points at the value",
			files: oneRule(`  - name: a
    actions:
      - log: {message: hi, level: loud}
`),
			want: []string{`r.yaml:4:35: rule "a": action 1 (log): level: "loud" is not one of`},
		},
		{
			name: "nested parameter error",
			files: oneRule(`  - name: a
    actions:
      - test.send:
          to: x
          custom:
            data: 42
            kye: v
`),
			want: []string{`r.yaml:8:13: rule "a": action 1 (test.send): custom.kye: unknown parameter`},
		},
		{
			name: "missing required parameter points at the kind",
			files: oneRule(`  - name: a
    actions:
      - test.send: {count: 1}
`),
			want: []string{`r.yaml:4:9: rule "a": action 1 (test.send): to: required parameter is missing`},
		},
		{
			name: "wrong type",
			files: oneRule(`  - name: a
    actions:
      - test.send: {to: x, count: many}
`),
			want: []string{`r.yaml:4:35: rule "a": action 1 (test.send): count: want integer, got string`},
		},
		{
			name: "parameters not a mapping",
			files: oneRule(`  - name: a
    actions:
      - log: hello
`),
			want: []string{`r.yaml:4:14: rule "a": action 1 (log): parameters: want a mapping, got the string "hello"`},
		},
		{
			name: "template error points into the string",
			files: oneRule(`  - name: a
    actions:
      - log:
          message: "hi ${ Too_Account }, welcome"
`),
			want: []string{`r.yaml:5:27: rule "a": action 1 (log): ${ Too_Account }: unknown name Too_Account`},
		},
		{
			name: "unterminated template",
			files: oneRule(`  - name: a
    actions:
      - log:
          message: "hi ${ From_Account"
`),
			want: []string{`r.yaml:5:20: rule "a": action 1 (log): unterminated ${ in template (missing })`},
		},
		{
			name: "kind restricted to other commands",
			files: oneRule(`  - name: a
    on: [Sns.CallbackPrevFriendAdd, Sns.CallbackFriendDelete]
    actions:
      - test.deny: {code: 38001}
`),
			want: []string{`r.yaml:5:9: rule "a": action 1 (test.deny): test.deny cannot be used on Sns.CallbackFriendDelete (only on Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse)`},
		},
		{
			name: "sync kind with a delay",
			files: oneRule(`  - name: a
    on: Sns.CallbackPrevFriendAdd
    actions:
      - test.deny: {code: 38001}
        delay: 1s
`),
			want: []string{`r.yaml:6:9: rule "a": action 1 (test.deny): test.deny is decided while the callback waits; it takes no delay`},
		},
		{
			name: "retry and delay problems",
			files: oneRule(`  - name: a
    actions:
      - log: {}
        delay: soon
        retry: {attempts: 0, backoff: 10s, max_backoff: 1s, jitter: true}
`),
			want: []string{
				`r.yaml:5:16: rule "a": action 1 (log): delay: invalid duration "soon"`,
				`r.yaml:6:27: rule "a": action 1 (log): retry: attempts must be at least 1`,
				`r.yaml:6:57: rule "a": action 1 (log): retry: max_backoff (1s) is shorter than backoff (10s)`,
				`r.yaml:6:61: rule "a": action 1 (log): retry: unknown key "jitter"`,
			},
		},
		{
			name: "test case problems",
			files: oneRule(`  - name: a
    tests:
      - name: t1
        event: {From_Acount: x, ForceFlag: "1"}
        match: yes
      - event: {}
        actions:
          - log: {mesage: hi}
`),
			want: []string{
				`r.yaml:5:17: rule "a": test 1 "t1": event: unknown field "From_Acount"; did you mean "From_Account"?`,
				`r.yaml:5:44: rule "a": test 1 "t1": event: ForceFlag: want an integer, got the string "1"`,
				`r.yaml:6:16: rule "a": test 1 "t1": match: want true or false, got the string "yes"`,
				`r.yaml:7:9: rule "a": test 2: missing required key name`,
				`r.yaml:7:9: rule "a": test 2: missing required key match`,
				`r.yaml:9:19: rule "a": test 2: action 1: unknown key "mesage"; did you mean "message"?`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.files)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n got  %s\n want %s…", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestLoadCollectsEveryProblemInFileOrder(t *testing.T) {
	got := problems(t, map[string]string{
		"b.yaml": "rules:\n  - name: b1\n    when: nope\n  - name: b2\n    on: Nope\n",
		"a.yaml": "rules:\n  - name: a1\n    actions:\n      - nope: {}\n",
		"c.yaml": "",
	})
	want := []string{"a.yaml:4:9:", "b.yaml:3:11:", "b.yaml:5:9:", "c.yaml:1:1:"}
	if len(got) != len(want) {
		t.Fatalf("got %d problems:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %s, want prefix %s", i, got[i], want[i])
		}
	}
}

func TestLoadEmptyListIsAllowed(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": "# nothing yet\nrules: []\n"})
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
	if m := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd}); m != nil {
		t.Fatalf("Match = %v", m)
	}
}

func TestLoadDirectoryWithoutRuleFilesIsAnError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"README.md": "x", ".hidden.yaml": "rules: []\n"})
	_, err := Load(dir, Options{Registry: testRegistry(t)})
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Line != 0 ||
		!strings.Contains(le.Problems[0].Msg, "no *.yaml or *.yml files") {
		t.Fatalf("err = %v", err)
	}
	if want := dir + ": no *.yaml"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Error() = %q, want prefix %q", err.Error(), want)
	}
}

func TestLoadMissingPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope")
	_, err := Load(p, Options{Registry: testRegistry(t)})
	var le *LoadError
	if !errors.As(err, &le) || le.Problems[0].File != p {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadRequiresRegistry(t *testing.T) {
	if _, err := Load(t.TempDir(), Options{}); err == nil {
		t.Fatal("no error without a registry")
	}
}

func TestLoadDirectoryLayout(t *testing.T) {
	// A Kubernetes ConfigMap volume: the visible files are symlinks into
	// ..data, itself a symlink to a timestamped directory.
	dir := writeFiles(t, map[string]string{
		"..2026_01_01_00_00_00.1/b.yaml": "rules:\n  - name: from-b\n",
		"..2026_01_01_00_00_00.1/a.yml":  "rules:\n  - name: from-a\n",
		"plain.yaml":                     "rules:\n  - name: plain\n",
		".hidden.yaml":                   "rules:\n  - name: hidden\n",
		"notes.txt":                      "not rules",
		"sub/deeper.yaml":                "rules:\n  - name: deeper\n",
		"dir.yaml/x.yaml":                "rules:\n  - name: in-dir-named-yaml\n",
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data")))
	must(os.Symlink("..data/b.yaml", filepath.Join(dir, "b.yaml")))
	must(os.Symlink("..data/a.yml", filepath.Join(dir, "a.yml")))

	s, err := Load(dir, Options{Registry: testRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range s.Rules() {
		names = append(names, r.Name)
	}
	if got, want := strings.Join(names, ","), "from-a,from-b,plain"; got != want {
		t.Fatalf("rules = %s, want %s", got, want)
	}
	files := s.Files()
	if len(files) != 3 || files[0].Path != filepath.Join(dir, "a.yml") || files[0].Rules != 1 {
		t.Fatalf("files = %+v", files)
	}

	// A single file is loaded as it is, whatever its extension.
	single := filepath.Join(dir, "notes.rules")
	must(os.WriteFile(single, []byte("rules:\n  - name: single\n"), 0o644))
	s, err = Load(single, Options{Registry: testRegistry(t)})
	if err != nil || s.Len() != 1 || s.Rules()[0].File != single {
		t.Fatalf("single file: %v, %+v", err, s)
	}
}

func TestLoadDanglingSymlinkIsAProblem(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": "rules: []\n"})
	if err := os.Symlink("gone.yaml", filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, Options{Registry: testRegistry(t)})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "b.yaml")+": ") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadSchemaDefaultsAndValues(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: full
    description: every key
    on: [Sns.CallbackFriendAdd, Sns.CallbackFriendDelete]
    when: From_Account != ""
    enabled: true
    shadow: false
    once: {key: From_Account}
    actions:
      - log: {message: hi}
        delay: 10m
        retry: {attempts: 3, backoff: 2s, max_backoff: 1m}
      - test.send: {to: x}
  - name: defaults
`))
	infos := s.Rules()
	if len(infos) != 2 {
		t.Fatalf("rules = %+v", infos)
	}
	full, def := infos[0], infos[1]
	if full.Description != "every key" || full.Line != 2 || strings.Join(full.On, ",") != imevent.CmdFriendAdd+","+imevent.CmdFriendDelete ||
		full.When != `From_Account != ""` || !full.Enabled || full.Shadow || strings.Join(full.Actions, ",") != "log,test.send" {
		t.Errorf("full = %+v", full)
	}
	if strings.Join(def.On, ",") != imevent.CmdFriendAdd || def.When != "" || !def.Enabled || def.Shadow || len(def.Actions) != 0 {
		t.Errorf("defaults = %+v", def)
	}
	m := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendDelete, From_Account: "a"})
	if len(m) != 1 || m[0].Rule != "full" {
		t.Fatalf("match = %+v", m)
	}
	if m[0].Once == nil || m[0].Once.Key != "a" || m[0].Once.For != 24*time.Hour {
		t.Errorf("once = %+v", m[0].Once)
	}
	a := m[0].Actions
	if len(a) != 2 || a[0].Delay != 10*time.Minute || a[0].Retry != (Retry{Attempts: 3, Backoff: 2 * time.Second, MaxBackoff: time.Minute}) ||
		a[1].Retry != (Retry{Attempts: 10, Backoff: time.Second, MaxBackoff: 5 * time.Minute}) || a[1].Delay != 0 {
		t.Errorf("actions = %+v", a)
	}
	// The rule without when matches every event of its command.
	m = mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd})
	if len(m) != 1 || m[0].Rule != "defaults" {
		t.Fatalf("match = %+v", m)
	}
}

func TestLoadAnchorsAndAliases(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: a
    when: &cond ClientCmd == "friend_add"
    actions:
      - log: &params {message: "hello ${ From_Account }", level: warn}
  - name: b
    when: *cond
    actions:
      - log: *params
`))
	m := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "x"})
	if len(m) != 2 || m[1].Actions[0].Params["message"] != "hello x" || m[1].Actions[0].Params["level"] != "warn" {
		t.Fatalf("match = %+v", m)
	}
}

// A FIFO named like a rule file is refused, not opened: opening it would
// block the load (and the watcher) forever.
func TestLoadRefusesAFIFOInsteadOfBlocking(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("rules:\n  - name: a\n    actions:\n      - log: { message: m }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "b.yaml"), 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	var reg actions.Registry
	_ = reg.Register(&actions.Log{})
	_, err := Load(dir, Options{Registry: &reg})
	if err == nil || !strings.Contains(err.Error(), "b.yaml: not a regular file") {
		t.Fatalf("err %v", err)
	}
}
