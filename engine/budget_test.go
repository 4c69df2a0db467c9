package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// TestBudgetStopsAfterCallback: an after-callback over the budget fails
// before anything is stored, naming the advice it was given, and is
// recorded with that error; its once keys are not claimed, so the same
// event in a smaller callback still runs.
func TestBudgetStopsAfterCallback(t *testing.T) {
	ring := newRecordLog(t)
	h := newHarness(t, `rules:
  - name: big
    on: Sns.CallbackFriendAdd
    once: { key: 'From_Account + "-" + To_Account', for: 1h }
    actions:
      - record: { note: '${ repeat("x", 3000) }' }
`, true, func(e *Engine) {
		e.Budget = NewJobBudget(10000, "make templates render less", nil)
		e.Recorder = ring
	})
	cb := newCB(imevent.CmdFriendAdd)
	cb.ID = imcallback.NewID()
	for i := range 10 {
		cb.Events = append(cb.Events, imevent.Event{CallbackCommand: cb.Command, From_Account: "a", To_Account: string(rune('b' + i)), PairIndex: i, PairCount: 10})
	}
	_, err := h.eng.Handle(context.Background(), cb)
	var rej *jobsRejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "pass 10000 bytes") || !strings.Contains(err.Error(), "make templates render less") {
		t.Fatalf("over the budget: %v", err)
	}
	if st, _ := h.q.Stats(context.Background()); st.Jobs != 0 {
		t.Fatalf("%d jobs stored", st.Jobs)
	}
	if got := listRecorded(t, ring, record.Filter{}); len(got) != 10 || !strings.Contains(got[0].StoreError, "pass 10000 bytes") || len(got[9].Matched) != 1 {
		t.Fatalf("the rejected callback was not recorded with its error and matches: %+v", got)
	}
	cb.ID, cb.Events = imcallback.NewID(), cb.Events[:2]
	if _, err := h.eng.Handle(context.Background(), cb); err != nil {
		t.Fatalf("within the budget: %v", err)
	}
	h.rec.wait(t, 2)
}

// TestBudgetPrevStillDecides: a before-callback over the budget still gets
// its decisions; its jobs are counted as not stored.
func TestBudgetPrevStillDecides(t *testing.T) {
	h := newHarness(t, denyRules, false, func(e *Engine) { e.Budget = NewJobBudget(1, "", nil) })
	reply, err := h.eng.Handle(context.Background(), prevCallback(t, "hello", "cheap loan"))
	if err != nil || reply.ActionStatus != "OK" || len(reply.ResultItem) != 2 || reply.ResultItem[1].ResultCode != 38001 {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	if !strings.Contains(scrape(t, h.eng.Metrics), `friendflow_prev_jobs_unstored_total{command="Sns.CallbackPrevFriendAdd"}`) {
		t.Fatal("the unstored jobs were not counted")
	}
}

// BenchmarkBudgetSpend is the budget's cost per event on the callback's
// path, as serve configures it (a byte bound and the kinds' rendered
// checks): one rule matching with a webhook and a log action, the usual
// shapes of rendered parameters.
func BenchmarkBudgetSpend(b *testing.B) {
	var reg actions.Registry
	for _, k := range []actions.Kind{&actions.Webhook{}, &actions.Log{}, im.NewSend(nil)} {
		if err := reg.Register(k); err != nil {
			b.Fatal(err)
		}
	}
	budget := NewJobBudget(8<<20, "x", &reg)
	ms := []rules.Match{{Rule: "welcome", Actions: []rules.Action{
		{Kind: "im.send", Params: map[string]any{"to": "bob", "text": "welcome, bob! alice added you."}},
		{Kind: "webhook", Params: map[string]any{"url": "https://crm.example.com/hooks/friend?token=abc", "headers": map[string]any{"Authorization": "Bearer xyz"}}},
		{Kind: "log", Params: map[string]any{"message": "alice added bob", "fields": map[string]any{"from": "alice", "to": "bob"}}},
	}}}
	b.ReportAllocs()
	for b.Loop() {
		spent := 0
		if err := budget.spend(ms, &spent); err != nil {
			b.Fatal(err)
		}
	}
}

// costlyRules is issue 22's costly rule beside a cheap one: each event
// costs the costly rule a 5 000-step loop.
const costlyRules = `rules:
  - name: costly
    on: [Sns.CallbackFriendAdd, Sns.CallbackPrevFriendAdd]
    when: 'len(filter(1..5000, # % 7 == 0)) < 0'
    lint: {ignore: [FF005]}
    actions:
      - record: { note: never }
  - name: cheap
    on: Sns.CallbackFriendAdd
    when: From_Account == "a"
    actions:
      - record: { note: "${ To_Account }" }
`

// TestEvalBudgetIsTheCallbacks: a 1000-pair callback draws on one
// evaluation budget: once it is spent, the costly rule fails at once for
// every later event, logged once for the callback and counted for each,
// while the cheap rule still matches every event and its jobs are stored.
// A callback whose reply deadline has passed evaluates nothing more in the
// VM.
func TestEvalBudgetIsTheCallbacks(t *testing.T) {
	// A deadline far off: the steps alone must stop the first callback
	// (the race detector on a busy machine is slow).
	h := newHarness(t, costlyRules, false, func(e *Engine) { e.ReplyDeadline = time.Hour })
	events := func(n int) *imcallback.Callback {
		cb := newCB(imevent.CmdFriendAdd)
		cb.ID = imcallback.NewID()
		for i := range n {
			cb.Events = append(cb.Events, imevent.Event{CallbackCommand: cb.Command, From_Account: "a", To_Account: fmt.Sprint("b", i), PairIndex: i, PairCount: n})
		}
		return cb
	}
	if _, err := h.eng.Handle(context.Background(), events(1000)); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.q.Stats(context.Background()); st.Jobs != 1000 {
		t.Fatalf("%d jobs stored; want the cheap rule's 1000", st.Jobs)
	}
	// About 30 000 steps an event (the range, and the loop weighted by
	// its predicate): the callback's 10 000 000 last about 330 events.
	if n := strings.Count(h.logs.String(), "rule failed at run time"); n != 1 {
		t.Errorf("%d rule failure lines; want 1 for the callback", n)
	}
	var failed int
	if _, err := fmt.Sscanf(after(scrape(t, h.eng.Metrics), `friendflow_rule_errors_total{rule="costly"} `), "%d", &failed); err != nil || failed < 600 || failed == 1000 {
		t.Errorf("the costly rule failed %d times (%v); want most, not all, of the 1000 events", failed, err)
	}

	// A callback that arrived (by the engine's clock) long before its
	// deadline passed.
	h.eng.Now = func() time.Time { return received }
	if _, err := h.eng.Handle(context.Background(), events(10)); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.q.Stats(context.Background()); st.Jobs != 1010 {
		t.Fatalf("%d jobs stored; want 1010", st.Jobs)
	}
	if n := strings.Count(h.logs.String(), "its reply deadline passed"); n != 1 {
		t.Errorf("%d lines about the deadline; want 1\n%s", n, h.logs)
	}
}

// after is what follows the first prefix in s; "" without one.
func after(s, prefix string) string {
	_, rest, _ := strings.Cut(s, prefix)
	return rest
}

// newRecordLog is a recording on a store of its own, closed when the test
// ends.
func newRecordLog(t *testing.T) *record.Log {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Config{DataDir: t.TempDir(), RecordEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	l := record.New(q, record.Options{Linger: time.Millisecond})
	t.Cleanup(func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	})
	return l
}

// listRecorded is what l holds that f selects, newest first, once what
// was recorded is written.
func listRecorded(t *testing.T, l *record.Log, f record.Filter) []record.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.Flush(ctx)
	got, _, err := l.List(ctx, f, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
