package rules

import (
	"errors"
	"strings"
	"testing"
)

const testedRules = `rules:
  - name: greet
    when: ClientCmd == "friend_response"
    actions:
      - log: {message: "hi ${ From_Account }"}
      - test.send:
          to: ${ To_Account }
          count: ${ PairIndex }
          timeout: 5s
          token: s3cret-${ From_Account }
    tests:
      - name: passes with a subset of actions and params
        event: {ClientCmd: friend_response, From_Account: alice, To_Account: bob, PairIndex: 2}
        match: true
        actions:
          - test.send: {to: bob, count: 2.0, timeout: 5000ms, urgent: false}
      - name: passes for another command
        event: {CallbackCommand: Sns.CallbackFriendDelete, ClientCmd: friend_response}
        match: false
      - name: fails on a param
        event: {ClientCmd: friend_response, From_Account: alice, To_Account: bob}
        match: true
        actions:
          - log: {message: "hi alice"}
          - test.send: {to: carol, count: 0, token: s3cret-bob}
      - name: fails on order
        event: {ClientCmd: friend_response, From_Account: alice, To_Account: bob}
        match: true
        actions:
          - test.send: {to: bob}
          - log: {}
      - name: fails on match
        event: {ClientCmd: friend_add}
        match: true
  - name: disabled-and-tested
    enabled: false
    shadow: true
    when: From_Account == "x" && PairIndex > 1
    actions: [{log: {message: "x"}}]
    tests:
      - name: a disabled shadow rule is still tested for what it would do
        event: {From_Account: x, PairIndex: 2}
        match: true
        actions: [{log: {message: x}}]
      - name: shows each condition when the match is wrong
        event: {From_Account: x, PairIndex: 0}
        match: true
      - name: an explicit command and an empty action list
        event: {From_Account: x, PairIndex: 0, CallbackCommand: Sns.CallbackFriendAdd}
        match: false
        actions: []
`

func TestRunTestsResults(t *testing.T) {
	s := mustLoad(t, map[string]string{"t.yaml": testedRules}, func(o *Options) { o.SkipTests = true })
	res := s.RunTests()
	if len(res) != 8 {
		t.Fatalf("%d results", len(res))
	}
	byName := map[string]TestResult{}
	for _, r := range res {
		byName[r.Test] = r
	}
	for _, name := range []string{"passes with a subset of actions and params", "passes for another command",
		"a disabled shadow rule is still tested for what it would do", "an explicit command and an empty action list"} {
		if r := byName[name]; !r.Pass {
			t.Errorf("%s: failed: %s", name, r.Failure)
		}
	}

	r := byName["fails on a param"]
	if r.Pass || r.Rule != "greet" || r.Line != 20 || r.Col != 9 || !strings.HasSuffix(r.File, "t.yaml") {
		t.Errorf("result = %+v", r)
	}
	wantDiff := `expected action 2 (test.send) not found among the rendered actions after action 1
  expected:
    test.send:
      to: "carol"
      count: 0
      token: "<redacted>"
  rendered action 2 (test.send):
      to: expected "carol", got "bob"
      count: 0 (equal)
      token: expected "<redacted>", got "<redacted>"`
	if r.Failure != wantDiff {
		t.Errorf("diff:\n%s\nwant:\n%s", r.Failure, wantDiff)
	}
	if strings.Contains(r.Failure, "s3cret") {
		t.Error("the diff shows a secret")
	}

	r = byName["fails on order"]
	if r.Pass || !strings.HasPrefix(r.Failure, "expected action 2 (log) not found among the rendered actions after action 2\n") ||
		!strings.Contains(r.Failure, "no log action rendered there; rendered: log, test.send") {
		t.Errorf("order failure:\n%s", r.Failure)
	}

	r = byName["fails on match"]
	if r.Pass || r.Failure != `expected match: true, got false
  when: ClientCmd == "friend_response"` {
		t.Errorf("match failure:\n%s", r.Failure)
	}

	r = byName["shows each condition when the match is wrong"]
	want := `expected match: true, got false
  when: From_Account == "x" && PairIndex > 1
    && From_Account == "x": true
    && PairIndex > 1: false`
	if r.Pass || r.Failure != want {
		t.Errorf("conditions failure:\n%s\nwant:\n%s", r.Failure, want)
	}
}

func TestFailingTestIsALoadError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t.yaml": testedRules})
	_, err := Load(dir, Options{Registry: testRegistry(t)})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, p := range le.Problems {
		got = append(got, strings.SplitN(strings.TrimPrefix(p.String(), dir+"/"), "\n", 2)[0])
	}
	want := []string{
		`t.yaml:20:9: test "fails on a param" of rule "greet" failed: expected action 2 (test.send) not found among the rendered actions after action 1`,
		`t.yaml:26:9: test "fails on order" of rule "greet" failed: expected action 2 (log) not found among the rendered actions after action 2`,
		`t.yaml:32:9: test "fails on match" of rule "greet" failed: expected match: true, got false`,
		`t.yaml:45:9: test "shows each condition when the match is wrong" of rule "disabled-and-tested" failed: expected match: true, got false`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRuntimeErrorFailsATest(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: r
    when: ForceFlag % PairCount == 0
    tests:
      - name: zero pairs
        event: {PairCount: 0}
        match: false
`), func(o *Options) { o.SkipTests = true })
	res := s.RunTests()
	if len(res) != 1 || res[0].Pass || !strings.HasPrefix(res[0].Failure, "runtime error: when: ") {
		t.Fatalf("results = %+v", res)
	}
}
