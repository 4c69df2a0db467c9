package rules

import (
	"strconv"

	"github.com/friendflow/friendflow/rules/imevent"
)

// Decision is the outcome of a before-callback (Prev command) for one
// target: allowed, or denied by a rule's synchronous action with a code and
// a reason.
type Decision struct {
	Deny   bool   `json:"deny"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	Rule   string `json:"rule,omitempty"` // the rule that denied
}

// DecisionOf returns the decision the matches make: the first match, in
// file order, that is not in shadow mode and has a synchronous action
// (deny) denies with that action's code and reason; no such match allows.
func DecisionOf(matches []Match) Decision {
	for _, m := range matches {
		if m.Shadow {
			continue
		}
		for _, a := range m.Actions {
			if !a.Sync {
				continue
			}
			r, _ := a.Params["reason"].(string)
			return Decision{Deny: true, Code: intParam(a.Params["code"]), Reason: r, Rule: m.Rule}
		}
	}
	return Decision{}
}

func intParam(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case uint64:
		return int(n)
	case float64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// Decide evaluates ev against the whole set, as a Prev callback's target
// is decided. A rule that fails at run time counts as not matched: the
// fail-open or fail-closed answer to such a failure is the engine's, which
// calls Match to see the errors.
func (s *Set) Decide(ev *imevent.Event) Decision {
	matches, _ := s.Match(ev)
	return DecisionOf(matches)
}

// DecideCounts is Decide for an event whose counters were counted into
// counts (Set.Count).
func (s *Set) DecideCounts(ev *imevent.Event, counts *Counts) Decision {
	matches, _ := s.match(ev, nil, counts)
	return DecisionOf(matches)
}
