package rules

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/rules/imevent"
)

const floodCounter = `counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
`

// TestCountLoadErrors: what count() and counters: get wrong is a load
// error at its place, with a suggestion where one helps.
func TestCountLoadErrors(t *testing.T) {
	rule := func(when string) string {
		return "rules:\n  - name: r\n    on: Sns.CallbackPrevFriendAdd\n    when: '" + when + "'\n"
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unknown counter", map[string]string{"a.yaml": floodCounter + rule(`count("requests_by_sendr", From_Account) > 1`)},
			`a.yaml:9:18: rule "r": when: count: unknown counter "requests_by_sendr"; did you mean "requests_by_sender"?`},
		{"no counter at all", map[string]string{"a.yaml": rule(`count("x", From_Account) > 1`)},
			`a.yaml:4:18: rule "r": when: count: unknown counter "x" (no counter is declared: add it under counters:)`},
		{"a name built at run time", map[string]string{"a.yaml": floodCounter + rule(`count(From_Account, From_Account) > 1`)},
			`count: the counter's name must be written as a quoted name`},
		{"a key of another type", map[string]string{"a.yaml": floodCounter + rule(`count("requests_by_sender", PairIndex) > 1`)},
			`cannot use int as argument (type string) to call count`},
		{"too many arguments", map[string]string{"a.yaml": floodCounter + rule(`count("requests_by_sender", From_Account, 1) > 1`)},
			`to call count`},
		{"a window too long", map[string]string{"a.yaml": strings.Replace(floodCounter, "10m", "8761h", 1) + "rules: []\n"},
			`a.yaml:5:13: counter "requests_by_sender": window must be between 1s and 8760h, got 8761h0m0s`},
		{"a key that counts", map[string]string{"a.yaml": strings.Replace(floodCounter, "key: From_Account", `key: 'string(count("requests_by_sender", From_Account))'`, 1) + "rules: []\n"},
			`a counter's key cannot use count()`},
		{"a duplicate name across files", map[string]string{"a.yaml": floodCounter + "rules: []\n", "b.yaml": floodCounter + "rules: []\n"},
			`b.yaml:2:11: duplicate counter name "requests_by_sender" (first defined at`},
		{"a bad name", map[string]string{"a.yaml": strings.Replace(floodCounter, "requests_by_sender", "requests by sender", 1) + "rules: []\n"},
			`name: want a letter then up to 63 of`},
		{"an unknown key", map[string]string{"a.yaml": floodCounter + "    windw: 1m\nrules: []\n"},
			`windw`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := problems(t, c.files)
			if !slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("problems %q lack %q", ps, c.want)
			}
		})
	}
}

// TestCounterDeclaredInAnotherFile: a rule may count with a counter that
// a file read after its own declares.
func TestCounterDeclaredInAnotherFile(t *testing.T) {
	s := mustLoad(t, map[string]string{
		"a.yaml": "rules:\n  - name: r\n    on: Sns.CallbackPrevFriendAdd\n    when: count(\"requests_by_sender\", From_Account) > 1\n",
		"b.yaml": floodCounter + "rules: []\n",
	})
	if got := s.Counters(); len(got) != 1 || got[0].Name != "requests_by_sender" || got[0].Window != 10*time.Minute {
		t.Fatalf("Counters() = %+v", got)
	}
}

// TestCountIncludesTheEvent: an event is counted before its rules see
// it; another key reads without counting; a set without counters counts
// nothing and costs no Counts.
func TestCountIncludesTheEvent(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": floodCounter + `rules:
  - name: second
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) == 2 && count("requests_by_sender", "bob") == 0
`})
	mem := NewMemCounters()
	ev := imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve"}
	at := time.Now()
	var got []int
	for range 3 {
		c := s.Count(context.Background(), &ev, mem, at)
		ms, errs := s.MatchCounts(&ev, nil, c)
		if errs != nil {
			t.Fatal(errs)
		}
		got = append(got, len(ms))
	}
	if !slices.Equal(got, []int{0, 1, 0}) {
		t.Errorf("matches per event %v, want [0 1 0]", got)
	}
	if n, _ := mem.Get(context.Background(), s.Counters()[0], "bob", at); n != 0 {
		t.Errorf("reading bob counted him: %d", n)
	}
	other := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "eve"}
	if c := s.Count(context.Background(), &other, mem, at); len(c.Values()) != 0 {
		t.Errorf("an event of another command was counted: %+v", c.Values())
	}
	if c := mustLoad(t, oneRule("  - name: r\n")).Count(context.Background(), &ev, mem, at); c != nil {
		t.Errorf("a set without counters made Counts %+v", c)
	}
}

// failingStore is counter state that cannot be reached.
type failingStore struct{}

var errUnreachable = errors.New("nats: no responders")

func (failingStore) Add(context.Context, Counter, string, time.Time) (int, error) {
	return 0, errUnreachable
}
func (failingStore) Get(context.Context, Counter, string, time.Time) (int, error) {
	return 0, errUnreachable
}

// TestCountFailsTheRuleWhenTheStateIsUnreachable: the rule reading the
// counter fails (ErrState) and the others are untouched.
func TestCountFailsTheRuleWhenTheStateIsUnreachable(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": floodCounter + `rules:
  - name: counted
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 20
  - name: plain
    on: Sns.CallbackPrevFriendAdd
`})
	ev := imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve"}
	c := s.Count(context.Background(), &ev, failingStore{}, time.Now())
	if !errors.Is(c.Err(), ErrState) || !errors.Is(c.Err(), errUnreachable) {
		t.Errorf("Counts.Err() = %v", c.Err())
	}
	ms, errs := s.MatchCounts(&ev, nil, c)
	if len(ms) != 1 || ms[0].Rule != "plain" || len(errs) != 1 || errs[0].Rule != "counted" || !errors.Is(errs[0], ErrState) {
		t.Errorf("matches %+v, errors %v", ms, errs)
	}
	// Without counting (an engine without state), the rule fails too.
	if _, errs := s.MatchCounts(&ev, nil, nil); len(errs) != 1 || !errors.Is(errs[0], ErrState) {
		t.Errorf("uncounted: %v", errs)
	}
}

// TestSlidingWindow: an event counts for the window, less at most one
// step, and never longer.
func TestSlidingWindow(t *testing.T) {
	mem := NewMemCounters()
	c := Counter{Name: "c", Window: time.Minute}
	t0 := time.Unix(1_700_000_000, 0)
	ctx := context.Background()
	for i := range 3 {
		if n, _ := mem.Add(ctx, c, "k", t0.Add(time.Duration(i)*time.Second)); n != i+1 {
			t.Fatalf("add %d: %d", i, n)
		}
	}
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{{59 * time.Second, 3}, {60 * time.Second, 2}, {61 * time.Second, 1}, {62 * time.Second, 0}} {
		if n, _ := mem.Get(ctx, c, "k", t0.Add(tc.after)); n != tc.want {
			t.Errorf("%v after: %d, want %d", tc.after, n, tc.want)
		}
	}
	if n, _ := mem.Add(ctx, c, "k", t0.Add(time.Hour)); n != 1 || len(mem.keys) != 1 {
		t.Errorf("an hour later: %d, %d keys", n, len(mem.keys))
	}
}

// TestTestSequenceFailureSaysWhy: a sequence whose last event does not
// match as expected fails with the counts in the condition trace.
func TestTestSequenceFailureSaysWhy(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": floodCounter + `rules:
  - name: deny
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 2
    actions:
      - test.deny: { code: 38001 }
    tests:
      - name: wrong
        events: [{ repeat: 2, event: { From_Account: eve } }]
        decision: { deny: 38001 }
`}, func(o *Options) { o.SkipTests = true })
	res := s.RunTests()
	if len(res) != 1 || res[0].Pass || !strings.Contains(res[0].Failure, "expected decision: deny 38001, got allow\n  count(\"requests_by_sender\", \"eve\") = 2") {
		t.Errorf("results %+v", res)
	}
}

// TestTestSequenceCarriesOnceKeys: a once key claimed by an earlier event
// of a case skips the actions of the last one.
func TestTestSequenceCarriesOnceKeys(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: greet
    once: { key: From_Account, for: 1h }
    actions:
      - test.send: { to: "${ From_Account }" }
    tests:
      - name: twice
        events: [{ repeat: 2, event: { From_Account: alice } }]
        match: true
        actions:
          - test.send: { to: alice }
`), func(o *Options) { o.SkipTests = true })
	res := s.RunTests()
	if len(res) != 1 || res[0].Pass || !strings.Contains(res[0].Failure, `once skips them: key "alice" was seen`) {
		t.Errorf("results %+v", res)
	}
}

// TestCountInOnceAndTemplates: count() reads the same values in once
// keys and templates as in when.
func TestCountInOnceAndTemplates(t *testing.T) {
	s := mustLoad(t, map[string]string{"a.yaml": floodCounter + `rules:
  - name: note
    on: Sns.CallbackPrevFriendAdd
    once: { key: 'From_Account + "#" + string(count("requests_by_sender", From_Account))', for: 1h }
    actions:
      - test.send: { to: "${ From_Account }", count: '${ count("requests_by_sender", From_Account) }' }
`})
	mem := NewMemCounters()
	ev := imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve"}
	var ms []Match
	for range 2 {
		ms, _ = s.MatchCounts(&ev, nil, s.Count(context.Background(), &ev, mem, time.Now()))
	}
	if len(ms) != 1 || ms[0].Once.Key != "eve#2" || ms[0].Actions[0].Params["count"] != 2 {
		t.Fatalf("matches %+v", ms)
	}
}

// TestProfileNotWithCount: the worker renders a profile() template
// without the event's counts.
func TestProfileNotWithCount(t *testing.T) {
	ps := problems(t, map[string]string{"r.yaml": floodCounter + `rules:
  - name: r
    on: Sns.CallbackPrevFriendAdd
    actions: [ { log: { message: "${ profile(From_Account).Nick ?? From_Account } ${ count(\"requests_by_sender\", From_Account) }" } } ]
`})
	if len(ps) != 1 || !strings.Contains(ps[0], "r.yaml:9:") || !strings.Contains(ps[0], "cannot read count()") {
		t.Errorf("problems: %v", ps)
	}
}
