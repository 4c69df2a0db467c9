package engine

import (
	"context"
	"time"

	"github.com/friendflow/friendflow/actions"
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
	// calls read, with the event counted (docs/rules.md, "Counters: rules with memory").
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
	return ExplainWith(ctx, set, events, ExplainOptions{Counters: live})
}

// ExplainOptions is what explain reads besides the events; it writes
// nothing and calls no IM API.
type ExplainOptions struct {
	// Counters are read, never written (nil: counters start empty): the
	// callback's events are counted on top of their values, in order.
	Counters rules.CounterStore
	// Profiles are what profile() gives, by account (nil: no account has
	// a profile, so the templates' fallbacks show).
	Profiles map[string]actions.Profile
}

// ExplainWith is Explain with the counters and profiles o gives.
func ExplainWith(ctx context.Context, set *rules.Set, events []imevent.Event, o ExplainOptions) []EventExplanation {
	live := o.Counters
	var store rules.CounterStore = rules.NewMemCounters()
	if live != nil {
		store = rules.NewPeekCounters(live)
	}
	now := time.Now()
	out := make([]EventExplanation, len(events))
	for i := range events {
		ev := &events[i]
		counts := set.Count(ctx, ev, store, now)
		out[i] = EventExplanation{Event: *ev, Rules: set.ExplainWith(ev, rules.ExplainInput{Counts: counts, Profiles: o.Profiles})}
		if imevent.IsPrev(ev.CallbackCommand) {
			d := set.DecideCounts(ev, counts)
			out[i].Decision = &imcallback.ResultItem{To_Account: ev.To_Account, ResultCode: d.Code, ResultInfo: d.Reason}
			out[i].DecidedBy = d.Rule
		}
		out[i].Counters = counts.Values()
	}
	return out
}
