package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

const decisionRules = `rules:
  - name: deny-spam
    on: Sns.CallbackPrevFriendAdd
    when: AddWording contains "loan"
    actions:
      - test.deny: { code: 38001 }
    tests:
      - name: spam denied
        event: { AddWording: "cheap loan" }
        match: true
        decision: { deny: 38001 }
  - name: shadow-deny-all
    on: Sns.CallbackPrevFriendAdd
    shadow: true
    actions:
      - test.deny: { code: 38005 }
  - name: deny-mallory
    on: Sns.CallbackPrevFriendAdd
    when: From_Account == "mallory"
    actions:
      - test.deny: { code: 38002 }
    tests:
      - name: the earlier rule wins
        event: { From_Account: mallory, AddWording: "loan" }
        match: true
        decision: { deny: 38001 }
      - name: shadow rules never decide
        event: { From_Account: alice }
        match: false
        decision: allow
      - name: mallory alone
        event: { From_Account: mallory }
        match: true
        decision: deny
`

func TestDecide(t *testing.T) {
	s := mustLoad(t, map[string]string{"d.yaml": decisionRules})
	for _, tc := range []struct {
		ev   imevent.Event
		want Decision
	}{
		{imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, AddWording: "loan", From_Account: "mallory"}, Decision{Deny: true, Code: 38001, Rule: "deny-spam"}},
		{imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "mallory"}, Decision{Deny: true, Code: 38002, Rule: "deny-mallory"}},
		{imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "alice"}, Decision{}},
	} {
		if got := s.Decide(&tc.ev); got != tc.want {
			t.Errorf("%+v: got %+v, want %+v", tc.ev, got, tc.want)
		}
	}
	for _, r := range s.RunTests() {
		if !r.Pass {
			t.Errorf("%s / %s: %s", r.Rule, r.Test, r.Failure)
		}
	}
}

func TestDecisionTestFailure(t *testing.T) {
	files := map[string]string{"d.yaml": strings.Replace(decisionRules,
		"match: true\n        decision: { deny: 38001 }\n  - name: shadow",
		"match: true\n        decision: allow\n  - name: shadow", 1)}
	got := problems(t, files)
	want := `d.yaml:8:9: test "spam denied" of rule "deny-spam" failed: expected decision: allow, got deny 38001 "" by rule deny-spam`
	if !slices.Contains(got, want) {
		t.Fatalf("problems %q, want %q", got, want)
	}
}

func TestDecisionLoadErrors(t *testing.T) {
	got := problems(t, oneRule(`  - name: r
    on: [Sns.CallbackFriendAdd, Sns.CallbackPrevFriendAdd]
    actions: [{log: {}}]
    tests:
      - name: not a before-callback
        event: { From_Account: a }
        match: true
        decision: allow
      - name: bad value
        event: { CallbackCommand: Sns.CallbackPrevFriendAdd }
        match: true
        decision: maybe
      - name: bad code
        event: { CallbackCommand: Sns.CallbackPrevFriendAdd }
        match: true
        decision: { deny: soon }
`))
	for _, want := range []string{
		`r.yaml:9:19: rule "r": test 1 "not a before-callback": decision: only before-callbacks`,
		`r.yaml:13:19: rule "r": test 2 "bad value": decision: want allow, deny or {deny: CODE, reason: TEXT}, got "maybe"`,
		`r.yaml:17:27: rule "r": test 3 "bad code": decision: deny: want a result code`,
	} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("no problem starting %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
}
