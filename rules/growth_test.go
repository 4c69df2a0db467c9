package rules

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/rules/imevent"
)

// doublingChain is issue 22's condition: levels lets, each doubling the
// one before, from From_Account: 2^levels times the account's bytes.
func doublingChain(levels int) string {
	var b strings.Builder
	b.WriteString("let v0 = From_Account; ")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d) > 0", levels)
	return b.String()
}

// allocated is what fn allocates, in bytes.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestGrowthIsChargedBeforeItIsBuilt(t *testing.T) {
	account := strings.Repeat("a", 64)
	for _, tc := range []struct{ name, when, template string }{
		// 64 MiB at the twentieth level.
		{name: "doubling", when: doublingChain(20)},
		{name: "doubling in a template", template: "${ " + strings.TrimSuffix(doublingChain(20), " > 0") + " }"},
		// expr's own repeat checks the count (a million) after building
		// a 64 MB string.
		{name: "repeat", when: `len(repeat(From_Account, 1000000)) > 0`},
		{name: "replace", when: `len(replace(repeat(From_Account, 1000), "a", From_Account)) > 0`},
		{name: "join", when: `len(join(map(1..10000, repeat(From_Account, 100)), From_Account)) > 0`},
		{name: "concat", when: `let l0 = [From_Account]; let l1 = concat(l0, l0); let l2 = concat(l1, l1); let l3 = concat(l2, l2); let l4 = concat(l3, l3); len(concat(l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, l4, [repeat(From_Account, 8000)])) > 0`},
		{name: "upper", when: `let s = repeat(From_Account, 10000); len(upper(s) + upper(s)) > 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := "  - name: grow\n    lint: {ignore: [FF005, FF006]}\n"
			if tc.when != "" {
				rule += "    when: '" + tc.when + "'\n"
			}
			msg := "hi"
			if tc.template != "" {
				msg = tc.template
			}
			rule += "    actions: [{log: {message: '" + msg + "'}}]\n"
			s := mustLoad(t, oneRule(rule))
			ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: account}
			var errs []RuleError
			alloc := allocated(func() { _, errs = s.Match(ev) })
			if len(errs) != 1 || !errors.Is(errs[0], ErrEvalBudget) {
				t.Fatalf("errors = %v; want ErrEvalBudget", errs)
			}
			// The rule's share is 1 MiB; what is built before the charge
			// that fails is about as much again.
			if alloc > 4<<20 {
				t.Errorf("the failed evaluation allocated %d KiB; want < 4 MiB", alloc>>10)
			}
		})
	}
}

// Growth within the budget evaluates as expr would.
func TestGrowthWithinBudget(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: ok
    when: 'let v = From_Account + "-"; let w = v + v; w == "a-a-" && repeat(v, 2) == w && replace(w, "-", "+") == "a+a+" && join(["x", v], "") == "xa-" && len(1..3) == 3 && 2 in 1..3 && upper(w) == "A-A-" && len(concat([1], [2])) == 2'
    actions: [{log: {message: '${ join(map(1..3, string(#)), ",") }'}}]
`))
	ms, errs := s.Match(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a"})
	if len(errs) != 0 || len(ms) != 1 || ms[0].Actions[0].Params["message"] != "1,2,3" {
		t.Fatalf("matches %+v, errors %v", ms, errs)
	}
}

func costlyRules() map[string]string {
	return oneRule(`
  - name: costly
    when: 'len(filter(1..5000, # % 7 == 0)) < 0'
    lint: {ignore: [FF005]}
    actions: [{log: {message: never}}]
  - name: fast
    when: From_Account == "a"
    actions: [{log: {message: hi}}]
`)
}

// One budget for the whole callback: a thousand events cost at most one
// callback's steps, after which the costly rule fails at once, and the
// fast rule still matches every event.
func TestCallbackBudgetIsShared(t *testing.T) {
	s := mustLoad(t, costlyRules(), func(o *Options) { o.CallbackSteps = 1_000_000 })
	b := s.NewBudget(time.Time{})
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a"}
	var matched, spent int
	for i := range 1000 {
		ms, errs := s.MatchBudget(ev, b)
		matched += len(ms)
		if len(errs) != 0 && errors.Is(errs[0], ErrCallbackBudget) {
			spent++
		} else if len(errs) != 0 {
			t.Fatalf("event %d: %v", i, errs)
		}
	}
	steps, _ := b.Used()
	if matched != 1000 || b.Err() == nil || spent < 900 || steps > 1_000_000+100_000 {
		t.Fatalf("matched %d, %d events over the callback's budget, %d steps used, err %v", matched, spent, steps, b.Err())
	}
	// Match alone gives each event a budget of its own.
	if _, errs := s.Match(ev); len(errs) != 0 {
		t.Fatalf("Match: %v", errs)
	}
}

// A budget whose deadline has passed stops every evaluation in the VM,
// and none other.
func TestCallbackBudgetDeadline(t *testing.T) {
	s := mustLoad(t, costlyRules())
	b := s.NewBudget(time.Now().Add(-time.Millisecond))
	ms, errs := s.MatchBudget(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a"}, b)
	if len(ms) != 1 || ms[0].Rule != "fast" || len(errs) != 1 || !errors.Is(errs[0], ErrCallbackBudget) ||
		!strings.Contains(errs[0].Error(), "deadline") {
		t.Fatalf("matches %+v, errors %v", ms, errs)
	}
}

func TestLintGrowthAndRanges(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: doubling
    when: '`+doublingChain(20)+`'
  - name: repeat-unknown
    when: 'len(repeat(From_Account, ForceFlag)) > 0'
  - name: range
    when: 'len(1..999999) < 0'
  - name: range-caller
    when: 'len(1..EventTime) < 0'
  - name: fine
    when: 'let v = From_Account + To_Account; let w = v + v + v; len(repeat(w, 3)) > 0 && len(0..PairCount) > 0 && EventTime in 1..9999999'
`))
	var got []string
	for _, w := range s.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		`rule "doubling": when: this expression builds strings of up to 128 KiB`,
		`rule "repeat-unknown": when: repeat() with a count the event decides builds strings of up to any size`,
		`rule "range": when: the range has 999999 numbers`,
		`rule "range-caller": when: the caller decides the range's length`,
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d:\n got %s\nwant …%s…", i, got[i], want[i])
		}
	}
}
