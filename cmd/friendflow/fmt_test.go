package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules"
)

// fmt --check passes on the shipped examples (CI runs it on
// examples/rules); on a file out of layout it names the file, exits 1 and
// changes nothing; fmt rewrites it, and a second fmt changes nothing.
func TestFmt(t *testing.T) {
	if code, out, errOut := runBin(t, ".", nil, "fmt", "--check", exampleRules(t)); code != 0 || out != "" {
		t.Fatalf("fmt --check on the examples: exit %d %q %s", code, out, errOut)
	}
	dir := t.TempDir()
	messy := "rules:\n- name: greet   # hello\n  actions: [{log: {message: hi}}]\n- name: other\n"
	file := writeRules(t, dir, "r.yaml", messy)
	code, out, _ := runBin(t, ".", nil, "fmt", "--check", dir)
	if raw, _ := os.ReadFile(file); code != 1 || out != file+"\n" || string(raw) != messy {
		t.Fatalf("fmt --check: exit %d %q; file now %q", code, out, raw)
	}
	if code, out, _ = runBin(t, ".", nil, "fmt", file); code != 0 || out != file+"\n" {
		t.Fatalf("fmt: exit %d %q", code, out)
	}
	want := "rules:\n  - name: greet # hello\n    actions: [{ log: { message: hi } }]\n\n  - name: other\n"
	if raw, _ := os.ReadFile(file); string(raw) != want {
		t.Fatalf("fmt wrote\n%s\nwant\n%s", raw, want)
	}
	if code, out, _ = runBin(t, ".", nil, "fmt", dir); code != 0 || out != "" {
		t.Fatalf("a second fmt: exit %d %q", code, out)
	}
	bad := writeRules(t, dir, "bad.yaml", "rules: [\n")
	if code, _, errOut := runBin(t, ".", nil, "fmt", bad); code != 1 || !strings.HasPrefix(errOut, bad+": yaml:") {
		t.Fatalf("fmt on broken YAML: exit %d %q", code, errOut)
	}
}

// fmt is idempotent on every rule file the repository ships besides the
// examples: the Kubernetes ConfigMaps' and the documentation's.
func TestFmtIdempotentOnShippedRuleFiles(t *testing.T) {
	for name, src := range ruleFiles(t) {
		once, err := rules.Format(src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if twice, err := rules.Format(once); err != nil || string(twice) != string(once) {
			t.Errorf("%s: a second fmt changes the file (%v)", name, err)
		}
	}
}

// The completion scripts offer the commands, the subcommands and each
// command's flags; bash's is run in bash.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runBin(t, ".", nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "backtest") || !strings.Contains(out, "fail-on-change") || !strings.Contains(out, "replay") {
			t.Fatalf("completion %s: exit %d %s", sh, code, errOut)
		}
	}
	if code, _, errOut := runBin(t, ".", nil, "completion", "tcsh"); code != 2 || !strings.Contains(errOut, `unknown shell "tcsh"`) {
		t.Fatalf("completion tcsh: exit %d %s", code, errOut)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(t.TempDir(), "friendflow.bash")
	_, out, _ := runBin(t, ".", nil, "completion", "bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]string{
		"li":               "lint lists",
		"lists i":          "import",
		"lists import --r": "--replace",
		"lint --st":        "--strict",
		"dlq r":            "replay",
		"dlq show --j":     "--json",
		"fmt --c":          "--check",
		"completion z":     "zsh",
		"serve --nats-tl":  "--nats-tls-ca --nats-tls-cert --nats-tls-key",
	} {
		cmd := exec.Command(bash, "-c", `source "$1"; COMP_WORDS=(friendflow $2); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _friendflow; echo "${COMPREPLY[*]}"`, "bash", script, line)
		got, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("completing %q: %q (%v), want %q", line, got, err, want)
		}
	}
}
