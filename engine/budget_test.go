package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/engine/imcallback"
)

// TestBudgetStopsAfterCallback: an after-callback over the budget fails
// before anything is stored, naming the advice it was given; its once keys
// are not claimed, so the same event in a smaller callback still runs.
func TestBudgetStopsAfterCallback(t *testing.T) {
	h := newHarness(t, `rules:
  - name: big
    on: Sns.CallbackFriendAdd
    once: { key: 'From_Account + "-" + To_Account', for: 1h }
    actions:
      - record: { note: '${ repeat("x", 3000) }' }
`, true, func(e *Engine) { e.Budget = &JobBudget{Bytes: 10000, Advice: "make templates render less"} })
	cb := newCB(imcallback.CmdFriendAdd)
	cb.ID = imcallback.NewID()
	for i := range 10 {
		cb.Events = append(cb.Events, imcallback.Event{CallbackCommand: cb.Command, From_Account: "a", To_Account: string(rune('b' + i)), PairIndex: i, PairCount: 10})
	}
	_, err := h.eng.Handle(context.Background(), cb)
	var rej *JobsRejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "pass 10000 bytes") || !strings.Contains(err.Error(), "make templates render less") {
		t.Fatalf("over the budget: %v", err)
	}
	if st, _ := h.q.Stats(context.Background()); st.Jobs != 0 {
		t.Fatalf("%d jobs stored", st.Jobs)
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
	h := newHarness(t, denyRules, false, func(e *Engine) { e.Budget = &JobBudget{Bytes: 1} })
	reply, err := h.eng.Handle(context.Background(), prevCallback(t, "hello", "cheap loan"))
	if err != nil || reply.ActionStatus != "OK" || len(reply.ResultItem) != 2 || reply.ResultItem[1].ResultCode != 38001 {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	if !strings.Contains(scrape(t, h.eng.Metrics), `friendflow_prev_jobs_unstored_total{command="Sns.CallbackPrevFriendAdd"}`) {
		t.Fatal("the unstored jobs were not counted")
	}
}
