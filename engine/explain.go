package engine

import (
	"context"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// EventExplanation is what explain says about one event.
type EventExplanation struct {
	Event     imevent.Event          `json:"event"`
	Decision  *imcallback.ResultItem `json:"decision,omitempty"`   // Prev commands: the reply's imcallback.ResultItem for this target
	DecidedBy string                 `json:"decided_by,omitempty"` // the rule that denied
	Rules     []rules.RuleTrace      `json:"rules"`
	// Counters are the counter values the event counted and the count()
	// calls read, with the event counted (DESIGN §5).
	Counters []rules.CountValue `json:"counters,omitempty"`
}

// Explain evaluates events against set without side effects, counters
// starting empty.
func Explain(set *rules.Set, events []imevent.Event) []EventExplanation {
	return ExplainCounters(context.Background(), set, events, nil)
}

// ExplainCounters is Explain reading the counters of live (nil: counters
// start empty), never writing them: the callback's events are counted on
// top of live's values, in order, as the engine would count them now.
func ExplainCounters(ctx context.Context, set *rules.Set, events []imevent.Event, live rules.CounterStore) []EventExplanation {
	var store rules.CounterStore = rules.NewMemCounters()
	if live != nil {
		store = rules.NewPeekCounters(live)
	}
	now := time.Now()
	out := make([]EventExplanation, len(events))
	for i := range events {
		ev := &events[i]
		counts := set.Count(ctx, ev, store, now)
		out[i] = EventExplanation{Event: *ev, Rules: set.ExplainCounts(ev, counts)}
		if imevent.IsPrev(ev.CallbackCommand) {
			d := set.DecideCounts(ev, counts)
			out[i].Decision = &imcallback.ResultItem{To_Account: ev.To_Account, ResultCode: d.Code, ResultInfo: d.Reason}
			out[i].DecidedBy = d.Rule
		}
		out[i].Counters = counts.Values()
	}
	return out
}
