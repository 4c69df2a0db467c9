package engine

import (
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
}

// Explain evaluates events against set without side effects.
func Explain(set *rules.Set, events []imevent.Event) []EventExplanation {
	out := make([]EventExplanation, len(events))
	for i := range events {
		ev := &events[i]
		out[i] = EventExplanation{Event: *ev, Rules: set.Explain(ev)}
		if imevent.IsPrev(ev.CallbackCommand) {
			d := set.Decide(ev)
			out[i].Decision = &imcallback.ResultItem{To_Account: ev.To_Account, ResultCode: d.Code, ResultInfo: d.Reason}
			out[i].DecidedBy = d.Rule
		}
	}
	return out
}
