package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

func TestCancelOnIsCarriedToTheActionAndItsTrace(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: tip
    actions:
      - log: {message: "tip for ${ From_Account }"}
        delay: 24h
        cancel_on: [Sns.CallbackFriendDelete, Sns.CallbackBlackListAdd]
      - log: {message: now}
`))
	ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a", To_Account: "b"})
	if len(errs) > 0 || len(ms) != 1 || len(ms[0].Actions) != 2 {
		t.Fatalf("Match = %+v, %v", ms, errs)
	}
	want := []string{imevent.CmdFriendDelete, imevent.CmdBlackListAdd}
	if got := ms[0].Actions[0].Cancel.commands(); !slices.Equal(got, want) {
		t.Errorf("CancelOn = %v, want %v", got, want)
	}
	if got := ms[0].Actions[1].Cancel; got != nil {
		t.Errorf("an action without cancel_on has %v", got)
	}
	for _, cmd := range imevent.Commands {
		if got, want := s.CancelsOn(cmd), slices.Contains(want, cmd); got != want {
			t.Errorf("CancelsOn(%s) = %v, want %v", cmd, got, want)
		}
	}
	ex := s.Explain(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a", To_Account: "b"})
	if got := ex[0].Actions[0].CancelOn; !slices.Equal(got, want) {
		t.Errorf("explain shows cancel_on %v, want %v", got, want)
	}
	// A single command is a list of one.
	one := mustLoad(t, oneRule("  - name: tip\n    actions:\n      - log: {message: x}\n        delay: 1h\n        cancel_on: Sns.CallbackFriendDelete\n"))
	if !one.CancelsOn(imevent.CmdFriendDelete) || one.CancelsOn(imevent.CmdFriendAdd) {
		t.Error("cancel_on: Sns.CallbackFriendDelete is not the list of that one command")
	}
	if none := mustLoad(t, oneRule("  - name: x\n    actions:\n      - log: {message: x}\n        delay: 1h\n")); none.CancelsOn(imevent.CmdFriendDelete) {
		t.Error("a set without cancel_on cancels on a command")
	}
}

func TestCancelOnLoadProblems(t *testing.T) {
	rule := func(action string) map[string]string {
		return oneRule("  - name: r\n    actions:\n" + action)
	}
	cases := []struct {
		name string
		yaml map[string]string
		want string
	}{
		{"typo gets a suggestion", rule("      - log: {message: x}\n        delay: 1h\n        cancel_on: [Sns.CallbackFriendDelet]\n"),
			`r.yaml:6:21: rule "r": action 1 (log): cancel_on: unknown command "Sns.CallbackFriendDelet"; did you mean "Sns.CallbackFriendDelete"?`},
		{"without a delay", rule("      - log: {message: x}\n        cancel_on: [Sns.CallbackFriendDelete]\n"),
			`r.yaml:5:9: rule "r": action 1 (log): cancel_on: needs a delay`},
		{"a delay beyond the markers' life", rule("      - log: {message: x}\n        delay: 721h\n        cancel_on: [Sns.CallbackFriendDelete]\n"),
			`r.yaml:6:9: rule "r": action 1 (log): cancel_on: the delay (721h0m0s) is over the 720h`},
		{"twice", rule("      - log: {message: x}\n        delay: 1h\n        cancel_on: [Sns.CallbackFriendDelete, Sns.CallbackFriendDelete]\n"),
			`r.yaml:6:47: rule "r": action 1 (log): cancel_on: command "Sns.CallbackFriendDelete" is listed twice`},
		{"empty list", rule("      - log: {message: x}\n        delay: 1h\n        cancel_on: []\n"),
			`r.yaml:6:20: rule "r": action 1 (log): cancel_on: want a command or a non-empty list`},
		{"misspelt key", rule("      - log: {message: x}\n        delay: 1h\n        cancel_onn: [Sns.CallbackFriendDelete]\n"),
			`r.yaml:6:9: rule "r": action 1: two action kinds`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := problems(t, c.yaml)
			if len(got) == 0 || !strings.HasPrefix(got[0], c.want) {
				t.Errorf("problems = %q\nwant first %q", got, c.want)
			}
		})
	}
}

func TestEveryCommandHasAPair(t *testing.T) {
	// cancel_on refuses a command without a pair; today every command has
	// one, and a new command without one must be refused, not matched on
	// empty accounts.
	for _, cmd := range imevent.Commands {
		if !HasPair(cmd) {
			t.Errorf("%s has no From_Account/To_Account pair", cmd)
		}
	}
	if HasPair("Group.CallbackAfterNewMemberJoin") {
		t.Error("an unknown command has a pair")
	}
}

// A rule test may expect an action's delay and cancel_on beside its kind;
// a difference fails the test and says what differed.
func TestRuleTestsCompareDelayAndCancelOn(t *testing.T) {
	rule := func(expect string) map[string]string {
		return oneRule(`  - name: tip
    actions:
      - log: {message: "tip for ${ From_Account }"}
        delay: 24h
        cancel_on: [Sns.CallbackFriendDelete]
    tests:
      - name: t
        event: {From_Account: a, To_Account: b}
        match: true
        actions:
          - log: {message: "tip for a"}
` + expect)
	}
	mustLoad(t, rule("            delay: 24h\n            cancel_on: Sns.CallbackFriendDelete\n"))
	mustLoad(t, rule("")) // not given: not compared
	for expect, want := range map[string]string{
		"            delay: 1h\n":                             "delay: expected 1h0m0s, got 24h0m0s",
		"            cancel_on: [Sns.CallbackBlackListAdd]\n": "cancel_on: expected [Sns.CallbackBlackListAdd], got [Sns.CallbackFriendDelete]",
		"            cancel_on: []\n":                         "cancel_on: expected [], got [Sns.CallbackFriendDelete]",
		"            cancel_on: [Sns.CallbackFriendDelet]\n":  `unknown command "Sns.CallbackFriendDelet"; did you mean "Sns.CallbackFriendDelete"?`,
	} {
		got := problems(t, rule(expect))
		if len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("expecting %q: problems %q, want one saying %q", expect, got, want)
		}
	}
}
