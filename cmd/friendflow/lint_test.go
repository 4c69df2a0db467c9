package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules"
)

// lint prints warnings and exits 0; --strict makes them fail it.
func TestLintWarnings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	rule := "rules:\n  - name: impossible\n    when: ForceFlag == 2\n"
	if err := os.WriteFile(file, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	noenv := func(string) string { return "" }
	var out, errOut bytes.Buffer
	if code := run([]string{"lint", dir}, &out, &errOut, noenv); code != 0 {
		t.Fatalf("lint exit %d; stdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	want := file + `:3:24: warning FF001: rule "impossible": when: ForceFlag is never 2: Tencent documents 0 or 1` + "\nok: 1 rules in 1 files, 1 warnings\n"
	if out.String() != want {
		t.Errorf("lint output:\n%s\nwant:\n%s", &out, want)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"lint", "--strict", dir}, &out, &errOut, noenv); code != 1 {
		t.Fatalf("lint --strict exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "1 warnings (--strict)") {
		t.Errorf("lint --strict stderr: %s", &errOut)
	}
}

// The examples lint clean even with --strict.
func TestLintExamplesStrict(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"lint", "--strict", exampleRules(t)}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("lint --strict examples: exit %d\n%s%s", code, &out, &errOut)
	}
}

func writeRules(t *testing.T, dir, name, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// lint takes several PATHs, files or directories, as the shell expands
// `lint examples/rules/*.yaml`; they load as one set, so a rule name must
// be unique across all of them.
func TestLintSeveralPaths(t *testing.T) {
	dir := exampleRules(t)
	examples, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	code, out, errOut := runBin(t, ".", nil, append([]string{"lint", "--strict"}, examples...)...)
	// Every shipped file, counted rather than named: a rule added to the
	// examples must not need this test changed.
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.HasSuffix(out, fmt.Sprintf(" rules in %d files\n", len(examples))) {
		t.Fatalf("lint %v: exit %d\n%s%s", examples, code, out, errOut)
	}
	// A directory and a file in it: the file loads once.
	code, out, _ = runBin(t, ".", nil, "lint", dir, examples[0])
	// Every shipped file, counted rather than named: a rule added to the
	// examples must not need this test changed.
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.HasSuffix(out, fmt.Sprintf(" rules in %d files\n", len(examples))) {
		t.Fatalf("lint DIR DIR/FILE: exit %d\n%s", code, out)
	}
	a := writeRules(t, filepath.Join(t.TempDir(), "a"), "r.yaml", "rules:\n  - name: same\n")
	b := writeRules(t, filepath.Join(t.TempDir(), "b"), "r.yaml", "rules:\n  - name: other\n  - name: same\n")
	code, out, errOut = runBin(t, ".", nil, "lint", a, b)
	want := b + `:3:11: duplicate rule name "same" (first defined at ` + a + ":2:11)\n"
	if code != 1 || out != want || errOut != "1 problems\n" {
		t.Fatalf("lint a b: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errOut)
	}
}

// --format github writes GitHub Actions annotations; --format json one
// document with every problem and warning.
func TestLintFormats(t *testing.T) {
	dir := t.TempDir()
	warn := writeRules(t, dir, "a.yaml", "rules:\n  - name: impossible\n    when: ForceFlag == 2\n")
	bad := writeRules(t, dir, "b.yaml", "rules:\n  - name: typo\n    whn: true\n")

	code, out, _ := runBin(t, ".", nil, "lint", "--format", "github", warn)
	want := "::warning file=" + warn + ",line=3,col=24,title=FF001::rule \"impossible\": when: ForceFlag is never 2: Tencent documents 0 or 1\nok: 1 rules in 1 files, 1 warnings\n"
	if code != 0 || out != want {
		t.Fatalf("lint --format github (warning): exit %d\n%s", code, out)
	}
	code, out, _ = runBin(t, ".", nil, "lint", "--format=github", "--strict", dir)
	if code != 1 || !strings.Contains(out, "::error file="+bad+",line=3,col=5::rule \"typo\": unknown key \"whn\"") {
		t.Fatalf("lint --format github (error): exit %d\n%s", code, out)
	}

	// -o and --output are the spelling every printing command takes;
	// --format stays as the older one.
	_, viaO, _ := runBin(t, ".", nil, "lint", "-o", "json", warn)
	_, viaOutput, _ := runBin(t, ".", nil, "lint", "--output", "json", warn)
	code, out, _ = runBin(t, ".", nil, "lint", "--format", "json", warn)
	if viaO != out || viaOutput != out {
		t.Errorf("lint -o json, --output json and --format json differ:\n%s\n%s\n%s", viaO, viaOutput, out)
	}
	var rep lintReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if code != 0 || !rep.OK || rep.Rules != 1 || len(rep.Problems) != 0 || len(rep.Warnings) != 1 || rep.Warnings[0].Code != "FF001" || rep.Warnings[0].Line != 3 {
		t.Fatalf("lint --format json: exit %d: %+v", code, rep)
	}
	code, out, _ = runBin(t, ".", nil, "lint", "--format", "json", "--strict", dir)
	rep = lintReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if code != 1 || rep.OK || len(rep.Problems) != 1 || rep.Problems[0].File != bad {
		t.Fatalf("lint --format json (problem): exit %d: %+v", code, rep)
	}
	if code, _, errOut := runBin(t, ".", nil, "lint", "--format", "xml", dir); code != 2 || !strings.Contains(errOut, "--output must be text, json or github") {
		t.Fatalf("lint --format xml: exit %d %s", code, errOut)
	}
}

// The escaping keeps a message with newlines, colons and commas one
// annotation.
func TestGitHubEscaping(t *testing.T) {
	var out bytes.Buffer
	writeProblem(&out, formatGitHub, "error", rules.Problem{File: "a,b:c.yaml", Line: 1, Col: 2, Msg: "50% of\nit: x, y"})
	if want := "::error file=a%2Cb%3Ac.yaml,line=1,col=2::50%25 of%0Ait: x, y\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// Without PATH, lint and test read ./rules; when it holds no rule files
// they say what they looked for.
func TestLintWithoutPath(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"lint", "test"} {
		code, out, errOut := runBin(t, dir, nil, cmd)
		want := "friendflow " + cmd + ": no PATH given and no rule files in ./rules (looked for ./rules/*.yaml and ./rules/*.yml); give rule files or directories as PATH…\n"
		if code != 2 || out != "" || errOut != want {
			t.Fatalf("%s in an empty directory: exit %d\nstderr %q\nwant   %q", cmd, code, errOut, want)
		}
	}
	writeRules(t, filepath.Join(dir, "rules"), "r.yml", "rules:\n  - name: here\n")
	if code, out, _ := runBin(t, dir, nil, "lint"); code != 0 || out != "ok: 1 rules in 1 files\n" {
		t.Fatalf("lint with ./rules: exit %d %s", code, out)
	}
}

// test --run selects cases by RULE/TEST; --format json and github report
// them for machines.
func TestTestRunAndFormats(t *testing.T) {
	code, out, _ := runBin(t, ".", nil, "test", "--run", "^welcome-on-accept/a plain", exampleRules(t))
	if code != 0 || out != "PASS welcome-on-accept / a plain add is not a response\n1 passed, 0 failed\n" {
		t.Fatalf("test --run: exit %d\n%s", code, out)
	}
	code, out, errOut := runBin(t, ".", nil, "test", "--run", "no-such-rule", exampleRules(t))
	if code != 1 || !strings.Contains(errOut, `no test case matches --run "no-such-rule"`) {
		t.Fatalf("test --run without a match: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runBin(t, ".", nil, "test", "--run", "(", exampleRules(t)); code != 2 || !strings.Contains(errOut, "--run: error parsing regexp") {
		t.Fatalf("test --run '(': exit %d %s", code, errOut)
	}

	dir := t.TempDir()
	failing := writeRules(t, dir, "f.yaml", "rules:\n  - name: forced\n    when: ForceFlag == 1\n    tests:\n      - name: wrong expectation\n        event: { ForceFlag: 0 }\n        match: true\n      - name: right\n        event: { ForceFlag: 1 }\n        match: true\n")
	code, out, _ = runBin(t, ".", nil, "test", "--format", "json", dir, filepath.Join(exampleRules(t), "welcome.yaml"))
	var rep testReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if code != 1 || rep.OK || rep.Passed != 5 || rep.Failed != 1 || rep.Results[0].Pass || rep.Results[0].Test != "wrong expectation" {
		t.Fatalf("test --format json: exit %d: %+v", code, rep)
	}
	code, out, _ = runBin(t, ".", nil, "test", "--format", "github", "--run", "forced/", dir)
	if code != 1 || !strings.HasPrefix(out, "::error file="+failing+",line=5,col=9::test \"wrong expectation\" of rule \"forced\" failed: expected match: true, got false") ||
		!strings.Contains(out, "PASS forced / right\n1 passed, 1 failed\n") {
		t.Fatalf("test --format github: exit %d\n%s", code, out)
	}
}
