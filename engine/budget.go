package engine

import (
	"fmt"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules"
)

// JobBudget bounds what one callback may store, checked while its events
// are matched and before anything is stored, so that a callback whose
// templates render too much fails at once instead of growing memory
// without bound (1000 pairs × a megabyte each) and failing at the store.
type JobBudget struct {
	bytes  int
	advice string
	checks map[string]func(map[string]any) error // kind name → its Spec.Rendered
}

// NewJobBudget bounds the rendered parameters of a callback's queued jobs
// to bytes, plus a fixed share per job for its event and record (0: no
// bound); advice ends the error of a callback over it: what the operator
// can change, which depends on the store (an embedded store's limit is
// fixed; a cluster's max_payload is the cluster's setting). The kinds'
// Spec.Rendered checks of their rendered parameters (the limits of their
// targets, such as IM's 8000-byte messages) run too, before the callback
// is answered instead of dead-lettering the job later; kinds may be nil.
func NewJobBudget(bytes int, advice string, kinds *actions.Registry) *JobBudget {
	b := &JobBudget{bytes: bytes, advice: advice, checks: map[string]func(map[string]any) error{}}
	if kinds != nil {
		for _, k := range kinds.Kinds() {
			if spec := k.Spec(); spec.Rendered != nil {
				b.checks[spec.Name] = spec.Rendered
			}
		}
	}
	return b
}

// jobOverhead is the share of a job's record besides its parameters:
// ids, names and its part of the event, which jobs of one event share.
const jobOverhead = 256

// jobsRejectedError is a callback whose rendered jobs cannot be stored:
// over the budget, or over a limit of an action's target. Nothing of the
// callback was stored.
type jobsRejectedError struct {
	Rule, Action string // the rule and kind that passed a limit; empty for the budget
	Err          error
}

func (e *jobsRejectedError) Error() string {
	if e.Rule == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("rule %s, action %s: %v", e.Rule, e.Action, e.Err)
}

func (e *jobsRejectedError) Unwrap() error { return e.Err }

// spend checks the queued actions of one event's matches against the
// budget, adding their size to *spent. Its work is a walk of each queued
// action's rendered parameters, a handful of values per action.
func (b *JobBudget) spend(ms []rules.Match, spent *int) error {
	if b == nil {
		return nil
	}
	for _, m := range ms {
		if m.Shadow {
			continue
		}
		for _, a := range m.Actions {
			if a.Sync {
				continue
			}
			if check := b.checks[a.Kind]; check != nil {
				if err := check(a.Params); err != nil {
					return &jobsRejectedError{Rule: m.Rule, Action: a.Kind, Err: err}
				}
			}
			if b.bytes <= 0 {
				continue
			}
			*spent += jobOverhead + valueSize(a.Params)
			if *spent > b.bytes {
				return &jobsRejectedError{Err: fmt.Errorf("the rendered jobs of this callback pass %d bytes, the limit of one callback's stored jobs; %s", b.bytes, b.advice)}
			}
		}
	}
	return nil
}

// valueSize is about the encoded size of a rendered value: the bytes of
// its strings and keys, a few for anything else.
func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v) + 2
	case map[string]any:
		n := 2
		for k, e := range v {
			n += len(k) + 4 + valueSize(e)
		}
		return n
	case []any:
		n := 2
		for _, e := range v {
			n += 1 + valueSize(e)
		}
		return n
	}
	return 8
}
