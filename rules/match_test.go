package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/friendflow/friendflow/rules/imevent"
)

// mustMatch is Match for events that no rule fails on.
func mustMatch(t testing.TB, s *Set, ev *imevent.Event) []Match {
	t.Helper()
	ms, errs := s.Match(ev)
	if errs != nil {
		t.Errorf("rule errors: %v", errs)
	}
	return ms
}

func matchNames(ms []Match) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Rule
		if m.Shadow {
			names[i] += "(shadow)"
		}
	}
	return strings.Join(names, ",")
}

func TestMatchOrderShadowDisabled(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"20-b.yaml": `rules:
  - name: b1
    when: From_Account == "alice"
    actions: [{log: {}}]
  - name: b2-shadow
    shadow: true
    once: {key: From_Account}
    actions: [{log: {}}]
`,
		"10-a.yml": `rules:
  - name: a1
    actions: [{log: {}}]
  - name: a2-disabled
    enabled: false
    actions: [{log: {}}]
  - name: a3-delete-only
    on: Sns.CallbackFriendDelete
`,
	})
	ms := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice"})
	if got, want := matchNames(ms), "a1,b1,b2-shadow(shadow)"; got != want {
		t.Fatalf("matches = %s, want %s", got, want)
	}
	if sh := ms[2]; sh.Actions != nil || sh.Once == nil || sh.Once.Key != "alice" {
		t.Errorf("shadow match = %+v", sh)
	}
	if got, want := matchNames(mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "bob"})), "a1,b2-shadow(shadow)"; got != want {
		t.Errorf("matches = %s, want %s", got, want)
	}
	if got := mustMatch(t, s, &imevent.Event{CallbackCommand: "Sns.CallbackSomethingElse"}); got != nil {
		t.Errorf("unknown command matched %v", got)
	}
	if got := matchNames(mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendDelete})); got != "a3-delete-only" {
		t.Errorf("delete matches = %s", got)
	}
	if s.Len() != 5 {
		t.Errorf("Len = %d", s.Len())
	}
}

func TestMatchRendersTemplates(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: r
    actions:
      - test.send:
          to: ${ From_Account }
          count: ${ PairIndex + 1 }
          urgent: ${ ForceFlag == 1 }
          timeout: "${ PairCount }s"
          headers:
            Authorization: Bearer ${ env("TOKEN") }
            X-Literal: $${ not a template }
          body:
            pair: ["${ From_Account }", "${ To_Account }", 7]
            ratio: ${ PairIndex / 2 }
            nothing: ${ nil }
            braces: '${ {"a": "}"}.a }'
            joined: '${ PairIndex }/${ PairCount } ${ ForceFlag == 1 } ${ 1.5 } [${ nil }] ${ [1, "x"] }'
            plain: 12
`), func(o *Options) {
		o.Getenv = func(name string) string { return "env:" + name }
	})
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob", PairIndex: 3, PairCount: 4, ForceFlag: 1}
	ms := mustMatch(t, s, ev)
	if len(ms) != 1 {
		t.Fatalf("matches = %v", ms)
	}
	got := ms[0].Actions[0].Params
	want := map[string]any{
		"to":      "alice",
		"count":   4,
		"urgent":  true,
		"timeout": "4s",
		"headers": map[string]any{"Authorization": "Bearer env:TOKEN", "X-Literal": "${ not a template }"},
		"body": map[string]any{
			"pair":    []any{"alice", "bob", 7},
			"ratio":   1.5,
			"nothing": nil,
			"braces":  "}",
			"joined":  `3/4 true 1.5 [] [1,"x"]`,
			"plain":   12,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("params:\n got  %#v\n want %#v", got, want)
	}

	// Every Match renders fresh maps: a caller changing one cannot change
	// the next.
	got["to"] = "changed"
	got["body"].(map[string]any)["plain"] = 0
	again := mustMatch(t, s, ev)[0].Actions[0].Params
	if again["to"] != "alice" || again["body"].(map[string]any)["plain"] != 12 {
		t.Fatalf("second match sees the first one's changes: %v", again)
	}
}

func TestMatchSyncFromSpec(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: deny
    on: [Sns.CallbackPrevFriendAdd]
    actions:
      - test.deny: {code: 38001}
      - log: {}
`))
	ms := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd})
	if len(ms) != 1 || !ms[0].Actions[0].Sync || ms[0].Actions[1].Sync {
		t.Fatalf("matches = %+v", ms)
	}
}

func TestMatchRuntimeErrorIsolated(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: before
  - name: bad-when
    when: ForceFlag % PairCount == 0
  - name: bad-once
    once: {key: 'string(1 % PairCount)'}
  - name: bad-template
    actions:
      - log: {message: "${ 10 % PairCount }"}
  - name: after
`))
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, PairCount: 0}
	ms, errs := s.Match(ev)
	if got := matchNames(ms); got != "before,after" {
		t.Fatalf("matches = %s", got)
	}
	if len(errs) != 3 {
		t.Fatalf("errors = %+v", errs)
	}
	for i, want := range []struct{ rule, in string }{
		{"bad-when", "when: "}, {"bad-once", "once.key: "}, {"bad-template", "action 1 (log): parameter message: ${ 10 % PairCount }: "},
	} {
		e := errs[i]
		if e.Rule != want.rule || !strings.HasPrefix(e.Err.Error(), want.in) || !strings.Contains(e.Err.Error(), "divide by zero") {
			t.Errorf("error %d = %s %v, want %s %q…", i, e.Rule, e.Err, want.rule, want.in)
		}
		if got := e.Error(); got != "rule "+want.rule+": "+e.Err.Error() {
			t.Errorf("error %d reads %q", i, got)
		}
		// The evaluation error stays reachable through the RuleError.
		var fe *file.Error
		if !errors.As(e, &fe) {
			t.Errorf("error %d: errors.As finds no *file.Error in %v", i, e)
		}
	}
	// With PairCount set, all five match, and no error is left over from
	// the event before.
	if got := matchNames(mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, PairCount: 2})); got != "before,bad-when,bad-once,bad-template,after" {
		t.Fatalf("matches = %s", got)
	}
	// Decide counts a failed rule as not matched and says nothing more.
	s = mustLoad(t, oneRule("  - name: bad\n    on: Sns.CallbackPrevFriendAdd\n    when: ForceFlag % PairCount == 0\n    actions: [{test.deny: {code: 38001}}]\n"))
	prev := &imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd}
	if got := s.Decide(prev); got != (Decision{}) {
		t.Fatalf("decision = %+v", got)
	}
	if ms, errs := s.Match(prev); ms != nil || len(errs) != 1 || errs[0].Rule != "bad" {
		t.Fatalf("matches = %v, errors = %v", ms, errs)
	}
}

func TestIndexKeys(t *testing.T) {
	proto := EnvPrototype()
	l := newLoader(nil, func(string) string { return "" }, (&Options{}).limits())
	cases := []struct {
		when string
		want *indexKey
	}{
		{`From_Account == "a"`, &indexKey{field: "From_Account", strs: []string{"a"}}},
		{`"a" == ClientCmd && ForceFlag == 1`, &indexKey{field: "ClientCmd", strs: []string{"a"}}},
		{`PairIndex > 0 and 2 == ForceFlag`, &indexKey{field: "ForceFlag", nums: []int{2}}},
		{`ClientCmd in ["a", "b"] && To_Account == "x"`, &indexKey{field: "To_Account", strs: []string{"x"}}},
		{`ClientCmd in ["a", "b"]`, &indexKey{field: "ClientCmd", strs: []string{"a", "b"}}},
		{`ClientCmd == "a" && From_Account in ["x", "y"]`, &indexKey{field: "From_Account", strs: []string{"x", "y"}}},
		{`ForceFlag == 1 && Admin_Account == "root"`, &indexKey{field: "Admin_Account", strs: []string{"root"}}},
		{`From_Account in ["a"] && To_Account == "b" && Initiator_Account == "c"`, &indexKey{field: "To_Account", strs: []string{"b"}}},
		{`ClientCmd in ["a"] && ForceFlag in [1]`, &indexKey{field: "ClientCmd", strs: []string{"a"}}},
		{`(ClientCmd == "a" && PairIndex == 0) && To_Account != ""`, &indexKey{field: "ClientCmd", strs: []string{"a"}}},
		{`ClientCmd == "a" || ClientCmd == "b"`, nil},
		{`!(ClientCmd == "a")`, nil},
		{`ClientCmd in ["a", 1]`, nil},
		{`ForceFlag == "1"`, nil},
		{`ForceFlag == 1.0`, nil},
		{`env("X") == "a"`, nil},
		{`Unknown == "a"`, nil},
		{`let x = ClientCmd; x == "a"`, nil},
		{``, nil},
	}
	for _, c := range cases {
		// As Load picks it; a when Load refuses still must not panic.
		var got *indexKey
		if _, _, key, err := l.compileWhen(c.when); err == nil {
			got = key
		} else if tree, err := parser.Parse(c.when); err == nil {
			got = indexKeyOf(tree.Node, proto)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("indexKeyOf(%q) = %+v, want %+v", c.when, got, c.want)
		}
	}
}

// TestIndexedMatchEqualsFullEvaluation checks the index against Explain,
// which evaluates every rule: for random rules and events, Match must
// return exactly the rules Explain finds matched, in the same order.
func TestIndexedMatchEqualsFullEvaluation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	accounts := []string{"alice", "bob", "carol", "dave"}
	cmds := []string{"friend_add", "friend_response", "x"}
	conds := []func() string{
		func() string { return fmt.Sprintf(`From_Account == %q`, accounts[rng.IntN(4)]) },
		func() string { return fmt.Sprintf(`%q == To_Account`, accounts[rng.IntN(4)]) },
		func() string { return fmt.Sprintf(`ClientCmd in [%q, %q]`, cmds[rng.IntN(3)], cmds[rng.IntN(3)]) },
		func() string { return fmt.Sprintf(`ForceFlag == %d`, rng.IntN(2)) },
		func() string { return fmt.Sprintf(`PairIndex > %d`, rng.IntN(3)) },
		func() string { return fmt.Sprintf(`From_Account != %q`, accounts[rng.IntN(4)]) },
		func() string {
			return fmt.Sprintf(`(From_Account == %q || To_Account == %q)`, accounts[rng.IntN(4)], accounts[rng.IntN(4)])
		},
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - name: r%d\n", i)
		if rng.IntN(5) == 0 {
			fmt.Fprintf(&b, "    on: [%s, %s]\n", imevent.CmdFriendAdd, imevent.CmdFriendDelete)
		} else if rng.IntN(5) == 0 {
			fmt.Fprintf(&b, "    on: %s\n", imevent.CmdFriendDelete)
		}
		if rng.IntN(10) == 0 {
			b.WriteString("    enabled: false\n")
		}
		if n := rng.IntN(4); n > 0 {
			parts := make([]string, n)
			for j := range parts {
				parts[j] = conds[rng.IntN(len(conds))]()
			}
			fmt.Fprintf(&b, "    when: '%s'\n", strings.Join(parts, " && "))
		}
	}
	s := mustLoad(t, map[string]string{"r.yaml": b.String()})
	for range 2000 {
		ev := &imevent.Event{
			CallbackCommand: []string{imevent.CmdFriendAdd, imevent.CmdFriendDelete}[rng.IntN(2)],
			From_Account:    accounts[rng.IntN(4)],
			To_Account:      accounts[rng.IntN(4)],
			ClientCmd:       cmds[rng.IntN(3)],
			ForceFlag:       rng.IntN(2),
			PairIndex:       rng.IntN(4),
		}
		var want []string
		for _, tr := range s.Explain(ev) {
			if tr.Status == StatusMatched {
				want = append(want, tr.Rule)
			}
		}
		if got := matchNames(mustMatch(t, s, ev)); got != strings.Join(want, ",") {
			t.Fatalf("event %+v:\n Match   %s\n Explain %s", ev, got, strings.Join(want, ","))
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: by-from
    when: From_Account == "alice" && PairIndex >= 0
    once: {key: From_Account + "|" + To_Account}
    actions:
      - log: {message: "hi ${ To_Account } #${ PairIndex }"}
  - name: any
    when: ForceFlag % PairCount == 0
    actions:
      - test.send: {to: "${ To_Account }", count: "${ PairIndex }"}
`))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				to := fmt.Sprintf("u%d-%d", g, i)
				ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: to, PairIndex: i, PairCount: 1 + i%2}
				ms, errs := s.Match(ev)
				if len(ms) != 2 || errs != nil {
					t.Errorf("matches = %v, errors = %v", ms, errs)
					return
				}
				if got, want := ms[0].Actions[0].Params["message"], fmt.Sprintf("hi %s #%d", to, i); got != want {
					t.Errorf("message = %v, want %v", got, want)
					return
				}
				if got := ms[1].Actions[0].Params["count"]; got != i {
					t.Errorf("count = %v, want %d", got, i)
					return
				}
				if i%50 == 0 {
					s.Explain(ev)
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadErrorIsALoadError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": ""})
	_, err := Load(dir, Options{Registry: testRegistry(t)})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("%T", err)
	}
}

// TestMergeCandidates checks both ways candidates merges the index's lists
// against a sort of their union: random disjoint sorted lists of rule
// indices, spanning one or many bitmap words.
func TestMergeCandidates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	var bits []uint64
	for range 2000 {
		k, n := 2+rng.IntN(4), 1+rng.IntN(600)
		lists := make([][]int32, k)
		var want []int32
		for i := range int32(n) {
			if rng.IntN(3) > 0 {
				continue
			}
			j := rng.IntN(k)
			lists[j] = append(lists[j], i+int32(rng.IntN(2))*1000)
		}
		var nonEmpty [][]int32
		for _, l := range lists {
			if len(l) > 0 {
				slices.Sort(l) // the offset of 1000 above may disorder a list
				nonEmpty = append(nonEmpty, l)
				want = append(want, l...)
			}
		}
		slices.Sort(want)
		var got []int32
		switch len(nonEmpty) {
		case 0, 1:
			continue
		case 2:
			got = merge2(nil, nonEmpty[0], nonEmpty[1])
		default:
			got, bits = mergeBits(nil, bits, nonEmpty)
			if i := slices.IndexFunc(bits, func(w uint64) bool { return w != 0 }); i >= 0 {
				t.Fatalf("mergeBits left word %d set", i)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("merge of %v:\n got  %v\n want %v", nonEmpty, got, want)
		}
	}
}
