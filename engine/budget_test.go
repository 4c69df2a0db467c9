package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// TestBudgetStopsAfterCallback: an after-callback over the budget fails
// before anything is stored, naming the advice it was given, and is
// recorded with that error; its once keys are not claimed, so the same
// event in a smaller callback still runs.
func TestBudgetStopsAfterCallback(t *testing.T) {
	ring := record.New(100)
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
	if got, _ := ring.List(record.Filter{}, 0, 100); len(got) != 10 || !strings.Contains(got[0].StoreError, "pass 10000 bytes") || len(got[9].Matched) != 1 {
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
