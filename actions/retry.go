package actions

import "time"

// Retry is an action's retry policy: at most Attempts runs, the n-th retry
// waiting a jittered Backoff·2ⁿ⁻¹ capped at MaxBackoff (and never less
// than the action's own Retry-After). Rules carry it from the rule file to
// the queue, which stores it with each job.
//
// The JSON names are those of queued jobs in the previous release's message
// format: changing them would lose the policy of jobs stored by it.
type Retry struct {
	Attempts   int           `json:"attempts,omitempty"`
	Backoff    time.Duration `json:"backoff,omitempty"`
	MaxBackoff time.Duration `json:"max_backoff,omitempty"`
}

// DefaultRetry is the policy of an action whose rule sets no retry, and it
// fills in the zero fields of any other (see WithDefaults). It is the only
// place the defaults are written; treat it as a constant.
var DefaultRetry = Retry{Attempts: 10, Backoff: time.Second, MaxBackoff: 5 * time.Minute}

// WithDefaults returns r with each zero or negative field replaced by
// DefaultRetry's. A job stored without a policy runs with the defaults.
func (r Retry) WithDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetry.Attempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultRetry.Backoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultRetry.MaxBackoff
	}
	return r
}
