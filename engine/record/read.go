package record

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Outcome filter values: a rule's outcome (matched, not_matched, error,
// shadow), the Prev decision (denied) or a job's (queued, done, retrying,
// dead, cancelled, skipped).
var Outcomes = []string{"matched", "not_matched", "error", "shadow", "denied", JobQueued, JobDone, JobRetrying, JobDead, JobCancelled, JobSkipped}

// Filter selects recorded events; zero fields select everything.
type Filter struct {
	Command string
	Account string // From or To
	Rule    string
	// Outcome is one of Outcomes; with Rule it is that rule's (or its
	// jobs') outcome, without it any rule's.
	Outcome string
	Since   time.Time
}

// Validate says what is wrong with f.
func (f Filter) Validate() error {
	if f.Outcome != "" && !slices.Contains(Outcomes, f.Outcome) {
		return fmt.Errorf("outcome must be one of %v, got %q", Outcomes, f.Outcome)
	}
	return nil
}

// Len is the number of events held.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(min(r.next-1, uint64(len(r.buf))))
}

// snapshot copies the entries with IDs below before (0: all), newest
// first; the copies share nothing the ring changes later.
func (r *Ring) snapshot(before uint64) []entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	top := r.next
	if before > 0 && before < top {
		top = before
	}
	out := make([]entry, 0, min(top-1, uint64(len(r.buf))))
	for id := top - 1; id > 0; id-- {
		e := r.at(id)
		if e == nil {
			break
		}
		out = append(out, entry{Event: e.copy(), set: r.setOf(e.RulesHash)})
	}
	return out
}

// List returns up to limit events matching f with IDs below before (0:
// from the newest), newest first, and the before of the next page (0:
// none). Filtering reads only what the ring holds, under its lock: no
// event is evaluated again.
func (r *Ring) List(f Filter, before uint64, limit int) ([]Event, uint64) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	top := r.next
	if before > 0 && before < top {
		top = before
	}
	var out []Event
	for id := top - 1; id > 0; id-- {
		e := r.at(id)
		if e == nil {
			break
		}
		if !f.matches(e) {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].ID
		}
		out = append(out, e.copy())
	}
	return out, 0
}

func (f *Filter) matches(e *entry) bool {
	return f.selects(e) && f.outcomeOf(e)
}

// selects checks the fields of f other than Outcome (and Rule with it).
func (f *Filter) selects(e *entry) bool {
	switch {
	case f.Command != "" && e.Command != f.Command,
		f.Account != "" && e.From != f.Account && e.To != f.Account,
		!f.Since.IsZero() && e.Received.Before(f.Since),
		f.Rule != "" && f.Outcome == "" && !slices.Contains(e.Matched, f.Rule) && !hasJobOf(e.Jobs, f.Rule):
		return false
	}
	return true
}

// outcomeOf checks Outcome: the rule's (any rule's without Rule) outcome
// or its jobs'.
func (f *Filter) outcomeOf(e *entry) bool {
	switch f.Outcome {
	case "":
		return true
	case "matched":
		if f.Rule != "" {
			return slices.Contains(e.Matched, f.Rule) && !slices.Contains(e.Shadow, f.Rule)
		}
		return len(e.Matched) > len(e.Shadow)
	case "shadow":
		if f.Rule != "" {
			return slices.Contains(e.Shadow, f.Rule)
		}
		return len(e.Shadow) > 0
	case "not_matched":
		if f.Rule != "" {
			return !slices.Contains(e.Matched, f.Rule) && !f.failed(e)
		}
		return len(e.Matched) == 0
	case "error":
		return f.failed(e)
	case "denied":
		return e.Decision != nil && e.Decision.ResultCode != 0
	}
	for _, j := range e.Jobs {
		if j.Outcome == f.Outcome && (f.Rule == "" || j.Rule == f.Rule) {
			return true
		}
	}
	return false
}

func hasJobOf(jobs []Job, rule string) bool {
	for _, j := range jobs {
		if j.Rule == rule {
			return true
		}
	}
	return false
}

// failed says whether the rule of f (any rule without one) failed at run
// time for e.
func (f *Filter) failed(e *entry) bool {
	if f.Rule == "" {
		return len(e.Errors) > 0
	}
	return slices.Contains(e.Errors, f.Rule)
}

// Get returns the event id and the rule set that decided it, nil when
// the ring no longer keeps that set (keptSets).
func (r *Ring) Get(id uint64) (Event, *rules.Set, bool) {
	if r == nil {
		return Event{}, nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.at(id)
	if e == nil {
		return Event{}, nil, false
	}
	return e.copy(), r.setOf(e.RulesHash), true
}

// copy returns the event of e sharing nothing the ring changes later (the
// outcomes of its jobs).
func (e *entry) copy() Event {
	c := e.Event
	c.Jobs = slices.Clone(e.Jobs)
	return c
}

// Export returns every event held, oldest first, each with its Outcomes
// derived against the rule set that decided it: the input of a backtest,
// and of `friendflow events export`.
func (r *Ring) Export() []Event {
	if r == nil {
		return nil
	}
	snap := r.snapshot(0)
	out := make([]Event, len(snap))
	for i := range snap {
		e := &snap[len(snap)-1-i]
		e.Outcomes = outcomesOf(e)
		out[i] = e.Event
	}
	return out
}

// MatchCounts counts, per rule, the events held that it matched.
func (r *Ring) MatchCounts() map[string]int {
	out := map[string]int{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := r.next - 1; id > 0; id-- {
		e := r.at(id)
		if e == nil {
			break
		}
		for _, m := range e.Matched {
			out[m]++
		}
	}
	return out
}

func outcomesOf(e *entry) []rules.Outcome {
	ev, err := e.Decode()
	if err != nil || e.set == nil {
		return nil
	}
	e.decoded = &ev // a backtest reads it next
	o, _ := e.set.Outcomes(&ev)
	return o
}

// Decode returns the recorded event.
func (e *Event) Decode() (imevent.Event, error) {
	if e.decoded != nil {
		return *e.decoded, nil
	}
	var ev imevent.Event
	if err := json.Unmarshal(e.Data, &ev); err != nil {
		return ev, fmt.Errorf("recorded event %d: %w", e.ID, err)
	}
	return ev, nil
}

// Callbacks counts the callbacks recorded since t.
func (r *Ring) Callbacks(since time.Time) int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n, last := 0, ""
	for id := r.next - 1; id > 0; id-- {
		e := r.at(id)
		if e == nil || e.Received.Before(since) {
			break
		}
		if e.CallbackID != last { // a callback's events are recorded together
			n++
			last = e.CallbackID
		}
	}
	return n
}
