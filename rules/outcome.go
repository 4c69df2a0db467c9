package rules

import "github.com/friendflow/friendflow/rules/imevent"

// StatusShadow is the Outcome of a shadow rule whose when is true: it
// matched, and its actions were not run.
const StatusShadow Status = "shadow"

// NotRendered is the Error of a matched Outcome whose actions could not be
// rendered again (a recorded event whose rule read count(): the counts it
// read are not kept): it matched, and its actions are not known.
const NotRendered = "matched; actions not rendered again (count() values are not recorded)"

// Outcome is what Match made of one rule for one event, as recordings and
// backtests keep it: a matched, shadow or failed rule, with its rendered
// actions and secret parameters redacted. Rules that did not match have
// no Outcome.
type Outcome struct {
	Rule    string        `json:"rule"`
	Status  Status        `json:"status"` // StatusMatched, StatusShadow or StatusError
	Actions []ActionTrace `json:"actions,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Outcomes evaluates ev as Match does (the same fast path and index, no
// side effects) and returns the outcome of every rule that matched or
// failed, in file order, and the decision they make for a Prev command.
// Unlike Explain it never evaluates a rule Match would skip, so a backtest
// over many events costs what matching them costs.
func (s *Set) Outcomes(ev *imevent.Event) ([]Outcome, Decision) {
	return s.OutcomesCounts(ev, nil)
}

// OutcomesCounts is Outcomes for an event whose counters were counted
// into counts (Set.Count), as backtest replays them.
func (s *Set) OutcomesCounts(ev *imevent.Event, counts *Counts) ([]Outcome, Decision) {
	ms, errs := s.match(ev, nil, counts)
	decision := DecisionOf(ms)
	out := make([]Outcome, 0, len(ms)+len(errs))
	for len(ms) > 0 || len(errs) > 0 {
		// Both lists are in file order: merge them.
		if len(errs) == 0 || len(ms) > 0 && s.ruleIndex(ms[0].Rule) < s.ruleIndex(errs[0].Rule) {
			out = append(out, s.outcomeOf(&ms[0]))
			ms = ms[1:]
			continue
		}
		out = append(out, Outcome{Rule: errs[0].Rule, Status: StatusError, Error: errs[0].Err.Error()})
		errs = errs[1:]
	}
	return out, decision
}

func (s *Set) outcomeOf(m *Match) Outcome {
	o := Outcome{Rule: m.Rule, Status: StatusMatched}
	if m.Shadow {
		o.Status = StatusShadow
		return o
	}
	r := s.rules[s.ruleIndex(m.Rule)]
	o.Actions = make([]ActionTrace, len(m.Actions))
	for i, a := range m.Actions {
		o.Actions[i] = r.actionTrace(i, a)
	}
	return o
}

// ruleIndex is the file-order position of the rule named name; names are
// unique in a set.
func (s *Set) ruleIndex(name string) int {
	s.byNameOnce.Do(func() {
		s.byName = make(map[string]int, len(s.rules))
		for i, r := range s.rules {
			s.byName[r.name] = i
		}
	})
	return s.byName[name]
}
