package record

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// maxExamples bounds the action changes a Diff shows per rule; the count
// is always complete.
const maxExamples = 20

// Diff is what a candidate rule set would have done differently to
// recorded events.
type Diff struct {
	Events int `json:"events"`
	// Truncated events had strings clipped when recorded: a rule reading
	// them may decide differently than it did.
	Truncated int            `json:"truncated,omitempty"`
	Changed   bool           `json:"changed"`
	Rules     []RuleDiff     `json:"rules"`
	Decisions []DecisionFlip `json:"decisions,omitempty"`
}

// RuleDiff is one rule's difference, by name: a rule only in the recorded
// set or only in the candidate is all newly or no longer matched. A shadow
// match counts as a match without actions.
type RuleDiff struct {
	Rule            string   `json:"rule"`
	NewlyMatched    []uint64 `json:"newly_matched"`     // event IDs
	NoLongerMatched []uint64 `json:"no_longer_matched"` // event IDs
	Unchanged       int      `json:"unchanged"`         // matched both times with the same actions
	// ActionsChanged counts events matched both times whose rendered
	// actions differ; Changes shows the first maxExamples.
	ActionsChanged int            `json:"actions_changed"`
	Changes        []ActionChange `json:"changes,omitempty"`
	// Errors are the events for which the candidate rule fails at run time.
	Errors []uint64 `json:"errors,omitempty"`
}

func (d *RuleDiff) changed() bool {
	return len(d.NewlyMatched)+len(d.NoLongerMatched)+d.ActionsChanged+len(d.Errors) > 0
}

// ActionChange is one event's rendered actions, recorded and candidate
// (secret parameters redacted on both sides).
type ActionChange struct {
	Event uint64              `json:"event"`
	Old   []rules.ActionTrace `json:"old"`
	New   []rules.ActionTrace `json:"new"`
}

// DecisionFlip is a Prev target whose decision changes.
type DecisionFlip struct {
	Event uint64         `json:"event"`
	To    string         `json:"to"`
	Old   rules.Decision `json:"old"`
	New   rules.Decision `json:"new"`
}

// Backtest evaluates candidate over events, which carry their recorded
// Outcomes (Log.Export), without side effects, and returns the
// difference. Rules appear in the candidate's order, then rules only the
// recording knew.
func Backtest(candidate *rules.Set, events []Event) (*Diff, error) {
	b := NewBacktest(candidate)
	for i := range events {
		if err := b.Add(&events[i]); err != nil {
			return nil, err
		}
	}
	return b.Diff(), nil
}

// Backtester is Backtest an event at a time, for events read from the
// store a batch at a time.
type Backtester struct {
	candidate *rules.Set
	d         *Diff
	byRule    map[string]*RuleDiff
	order     []string
	// counters holds the counters, replayed in the events' order.
	counters rules.CounterStore
}

// NewBacktest starts a backtest of candidate, counters starting empty.
func NewBacktest(candidate *rules.Set) *Backtester {
	return NewBacktestCounters(candidate, rules.NewMemCounters())
}

// NewBacktestCounters starts a backtest of candidate whose events are
// counted in counters (rules.SeededCounters: from a deployment's counts).
func NewBacktestCounters(candidate *rules.Set, counters rules.CounterStore) *Backtester {
	b := &Backtester{candidate: candidate, d: &Diff{}, byRule: map[string]*RuleDiff{}, counters: counters}
	for _, ri := range candidate.Rules() {
		b.ruleDiff(ri.Name)
	}
	return b
}

func (b *Backtester) ruleDiff(name string) *RuleDiff {
	rd := b.byRule[name]
	if rd == nil {
		rd = &RuleDiff{Rule: name}
		b.byRule[name] = rd
		b.order = append(b.order, name)
	}
	return rd
}

// Add evaluates the candidate over one event.
func (b *Backtester) Add(e *Event) error {
	d := b.d
	d.Events++
	if e.Truncated {
		d.Truncated++
	}
	ev, err := e.Decode()
	if err != nil {
		return err
	}
	// Each event is counted at its own time.
	counts := b.candidate.Count(context.Background(), &ev, b.counters, rules.EventTime(&ev, time.Now()))
	now, dec := b.candidate.OutcomesCounts(&ev, counts)
	compare(e.ID, e.Outcomes, now, b.ruleDiff)
	if imevent.IsPrev(ev.CallbackCommand) {
		// Which rule decides is not a flip; the answer Tencent gets is.
		if old := recordedDecision(e); old.Deny != dec.Deny || old.Code != dec.Code || old.Reason != dec.Reason {
			d.Decisions = append(d.Decisions, DecisionFlip{Event: e.ID, To: ev.To_Account, Old: old, New: dec})
		}
	}
	return nil
}

// Diff is the difference over the events added.
func (b *Backtester) Diff() *Diff {
	d := b.d
	d.Changed = len(d.Decisions) > 0
	d.Rules = d.Rules[:0]
	for _, name := range b.order {
		rd := b.byRule[name]
		d.Rules = append(d.Rules, *rd)
		d.Changed = d.Changed || rd.changed()
	}
	return d
}

// compare adds one event's recorded and candidate outcomes to the rule diffs.
func compare(id uint64, old, now []rules.Outcome, ruleDiff func(string) *RuleDiff) {
	matched := func(os []rules.Outcome) map[string]*rules.Outcome {
		m := make(map[string]*rules.Outcome, len(os))
		for i := range os {
			if os[i].Status != rules.StatusError {
				m[os[i].Rule] = &os[i]
			}
		}
		return m
	}
	was, is := matched(old), matched(now)
	for _, o := range now {
		rd := ruleDiff(o.Rule)
		prev := was[o.Rule]
		switch {
		case o.Status == rules.StatusError:
			rd.Errors = append(rd.Errors, id)
			if prev != nil {
				rd.NoLongerMatched = append(rd.NoLongerMatched, id)
			}
		case prev == nil:
			rd.NewlyMatched = append(rd.NewlyMatched, id)
		case prev.Error == rules.NotRendered || sameActions(prev.Actions, o.Actions):
			rd.Unchanged++ // what the old rule rendered is not known: no change to show
		default:
			rd.ActionsChanged++
			if len(rd.Changes) < maxExamples {
				rd.Changes = append(rd.Changes, ActionChange{Event: id, Old: prev.Actions, New: o.Actions})
			}
		}
	}
	for _, o := range old {
		if o.Status != rules.StatusError && is[o.Rule] == nil && !failed(now, o.Rule) {
			rd := ruleDiff(o.Rule)
			rd.NoLongerMatched = append(rd.NoLongerMatched, id)
		}
	}
}

func failed(os []rules.Outcome, rule string) bool {
	for _, o := range os {
		if o.Rule == rule && o.Status == rules.StatusError {
			return true
		}
	}
	return false
}

// sameActions compares as JSON where the values differ in type: recorded
// outcomes read back from a JSONL file hold numbers as float64, fresh ones
// as int.
func sameActions(a, b []rules.ActionTrace) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// recordedDecision is the answer the recorded rules give e: the one its
// outcomes make, evaluated again against today's lists like the rules'
// outcomes, except where a matched rule could not be rendered again (it
// read count()): then the answer Tencent got, as recorded.
func recordedDecision(e *Event) rules.Decision {
	notRendered := slices.ContainsFunc(e.Outcomes, func(o rules.Outcome) bool { return o.Error == rules.NotRendered })
	if d := e.Decision; d != nil && notRendered {
		if d.ResultCode == 0 {
			return rules.Decision{}
		}
		return rules.Decision{Deny: true, Code: d.ResultCode, Reason: d.ResultInfo}
	}
	return decisionOf(e.Outcomes)
}

// decisionOf is rules.DecisionOf for recorded outcomes: the first live
// match with a synchronous (deny) action denies.
func decisionOf(os []rules.Outcome) rules.Decision {
	for _, o := range os {
		if o.Status != rules.StatusMatched {
			continue
		}
		for _, a := range o.Actions {
			if !a.Sync {
				continue
			}
			reason, _ := a.Params["reason"].(string)
			return rules.Decision{Deny: true, Code: code(a.Params["code"]), Reason: reason, Rule: o.Rule}
		}
	}
	return rules.Decision{}
}

func code(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// ReadJSONL reads events as `friendflow events export` writes them: one
// JSON Event per line.
func ReadJSONL(data []byte) ([]Event, error) {
	var out []Event
	err := ScanJSONL(bytes.NewReader(data), func(e *Event) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// ScanJSONL calls fn with each event of r, JSONL as `friendflow events
// export` writes it, one at a time: a backtest holds no more.
func ScanJSONL(r io.Reader, fn func(*Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if len(e.Data) == 0 {
			return fmt.Errorf("line %d: no event", n)
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return sc.Err()
}

// WriteJSONL appends events to b as JSONL.
func WriteJSONL(b *bytes.Buffer, events []Event) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	return nil
}
