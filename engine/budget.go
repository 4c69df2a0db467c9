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
	// Bytes bounds the rendered parameters of a callback's queued jobs,
	// plus a fixed share per job for its event and record; 0: no bound.
	Bytes int
	// Advice ends the error of a callback over Bytes: what the operator
	// can change, which depends on the store (an embedded store's limit
	// is fixed; a cluster's max_payload is the cluster's setting).
	Advice string
	// Kinds, when set, gives each action kind's Spec.Rendered check of
	// its rendered parameters (the limits of its target, such as IM's
	// 8000-byte messages), run before the callback is answered instead of
	// dead-lettering the job later.
	Kinds *actions.Registry
}

// jobOverhead is the share of a job's record besides its parameters:
// ids, names and its part of the event, which jobs of one event share.
const jobOverhead = 256

// JobsRejectedError is a callback whose rendered jobs cannot be stored:
// over the budget, or over a limit of an action's target. Nothing of the
// callback was stored.
type JobsRejectedError struct {
	Rule, Action string // the rule and kind that passed a limit; empty for the budget
	Err          error
}

func (e *JobsRejectedError) Error() string {
	if e.Rule == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("rule %s, action %s: %v", e.Rule, e.Action, e.Err)
}

func (e *JobsRejectedError) Unwrap() error { return e.Err }

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
			if err := b.rendered(m.Rule, &a); err != nil {
				return err
			}
			if b.Bytes <= 0 {
				continue
			}
			*spent += jobOverhead + valueSize(a.Params)
			if *spent > b.Bytes {
				return &JobsRejectedError{Err: fmt.Errorf("the rendered jobs of this callback pass %d bytes, the limit of one callback's stored jobs; %s", b.Bytes, b.Advice)}
			}
		}
	}
	return nil
}

// rendered runs the kind's check of its rendered parameters.
func (b *JobBudget) rendered(rule string, a *rules.Action) error {
	if b.Kinds == nil {
		return nil
	}
	k, ok := b.Kinds.Lookup(a.Kind)
	if !ok {
		return nil // the worker dead-letters an unknown kind; rules reject it at load
	}
	if check := k.Spec().Rendered; check != nil {
		if err := check(a.Params); err != nil {
			return &JobsRejectedError{Rule: rule, Action: a.Kind, Err: err}
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
