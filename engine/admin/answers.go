package admin

import (
	"encoding/json"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

// The admin API's JSON answers and request bodies, declared once: the
// server encodes them, `friendflow`'s admin client (reload, rules, dlq)
// decodes them, and the console renders them. POST /explain answers
// []engine.EventExplanation and GET /events/export the JSONL of
// record.Event.
//
// Answers that were maps keep their fields in the keys' alphabetical
// order, the order encoding/json writes a map in: the bytes on the wire
// did not change when they became types.

// Health is GET /healthz's answer: the process is alive.
type Health struct {
	Status string `json:"status"` // "ok"
}

// Readiness is GET /readyz's answer: "ready" (200), or "not ready" (503)
// with the failing conditions by name.
type Readiness struct {
	Failing map[string]string `json:"failing,omitempty"`
	Status  string            `json:"status"`
}

// CounterValue is GET /counters/{name}/{key}'s answer: the count of a
// counter for one key now, inside its window.
type CounterValue struct {
	Counter string    `json:"counter"`
	Key     string    `json:"key"`
	Count   int       `json:"count"`
	Window  string    `json:"window"`
	At      time.Time `json:"at"`
}

// CounterTop is GET /counters/{name}'s answer: a counter as declared and
// its busiest keys now, as far as a bounded scan of its bucket saw
// (state.Top: examined, total, cut).
type CounterTop struct {
	Counter string    `json:"counter"`
	On      []string  `json:"on"`
	Key     string    `json:"key_expr"`
	Window  string    `json:"window"`
	At      time.Time `json:"at"`
	state.Top
}

// ErrorBody is the answer of a request that failed: what went wrong,
// and, for the dead-letter operations, the ids that name none.
type ErrorBody struct {
	Error      string   `json:"error"`
	UnknownIDs []string `json:"unknown_ids,omitempty"`
}

// RulesView is GET /rules's answer: how the reloads went, and the rule
// set serving, if one is (Files, Hash and Rules are then set).
type RulesView struct {
	Files  []rules.FileInfo `json:"files,omitzero"`
	Hash   string           `json:"hash,omitempty"`
	Rules  []rules.RuleInfo `json:"rules,omitzero"`
	Status reload.Status    `json:"status"`
}

// Reloaded is POST /reload's answer when the rules loaded (200).
type Reloaded struct {
	Hash  string `json:"hash"`
	OK    bool   `json:"ok"` // true
	Rules int    `json:"rules"`
}

// ReloadFailed is POST /reload's answer when they did not (422): the
// error, each problem of the files, and the hash of the set that keeps
// serving ("" when none does).
type ReloadFailed struct {
	Error       string          `json:"error"`
	OK          bool            `json:"ok"` // false
	Problems    []rules.Problem `json:"problems,omitempty"`
	ServingHash string          `json:"serving_hash,omitempty"`
}

// DeadLetterList is GET /dlq's answer: one page of dead letters. Count is
// the page's size, Total the store's; Next is the cursor of the next
// page, "" after the last.
type DeadLetterList struct {
	Count       int              `json:"count"`
	DeadLetters []DeadLetterView `json:"dead_letters"`
	Next        string           `json:"next"`
	Total       int              `json:"total"`
}

// DeadLetterView is one dead letter as GET /dlq shows it.
type DeadLetterView struct {
	ID           string    `json:"id"`
	Rule         string    `json:"rule"`
	Action       string    `json:"action"`
	LastError    string    `json:"last_error"`
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt"`
	LastAttempt  time.Time `json:"last_attempt"`
}

// DeadLetterDetail is one dead letter as GET /dlq/{id} shows it: the job
// with its secret parameters redacted, every failed attempt's error, and
// the event it was made for.
type DeadLetterDetail struct {
	DeadLetterView
	Reason     string               `json:"reason"`
	DeadAt     time.Time            `json:"dead_at"`
	CallbackID string               `json:"callback_id,omitempty"`
	OnceKey    string               `json:"once_key,omitempty"`
	Params     map[string]any       `json:"params"`
	Errors     []queue.AttemptError `json:"errors"`
	Event      json.RawMessage      `json:"event,omitempty"`
}

// DeadLetterSelection is the body of POST /dlq/replay and POST /dlq/drop:
// the ids, all, or a filter, exactly one of them. With all or a filter,
// DryRun only counts, and Limit stops after that many, the answer's Next
// saying where to go on (Cursor).
type DeadLetterSelection struct {
	All    bool            `json:"all"`
	IDs    []string        `json:"ids"`
	Filter *DeadFilterJSON `json:"filter,omitempty"`
	DryRun bool            `json:"dry_run,omitempty"`
	Cursor string          `json:"cursor,omitempty"`
	Limit  int             `json:"limit,omitempty"`
}

// DeadFilterJSON is a dead-letter filter as POST /dlq/replay and
// POST /dlq/drop take it; GET /dlq takes the same names as query
// parameters. Since and Until are RFC 3339 times or Go durations
// (https://pkg.go.dev/time#ParseDuration) meaning that long ago.
type DeadFilterJSON struct {
	Rule  string `json:"rule,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Error string `json:"error,omitempty"`
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
}

// DeadLettersMoved is the answer of POST /dlq/replay (Replayed set) and
// POST /dlq/drop (Dropped set): how many were, and when the operation
// failed, why, and the ids that name no dead letter.
type DeadLettersMoved struct {
	Dropped    *int     `json:"dropped,omitempty"`
	DryRun     bool     `json:"dry_run,omitempty"`
	Error      string   `json:"error,omitempty"`
	Next       string   `json:"next,omitempty"` // where a step by filter or all stopped; "" when done
	Replayed   *int     `json:"replayed,omitempty"`
	UnknownIDs []string `json:"unknown_ids,omitempty"`
}

// Count is how many dead letters were replayed or dropped.
func (m *DeadLettersMoved) Count() int {
	switch {
	case m.Replayed != nil:
		return *m.Replayed
	case m.Dropped != nil:
		return *m.Dropped
	}
	return 0
}

// EventList is GET /events's answer: one page of the recorded events,
// newest first, of the whole deployment; Next, when not 0, is the cursor
// of the next page. Capacity is --record-events, Recorded how many the
// store holds.
type EventList struct {
	Capacity int            `json:"capacity"`
	Events   []record.Event `json:"events"`
	Next     uint64         `json:"next,omitempty"`
	Recorded int            `json:"recorded"`
}

// Trace is GET /events/{id}: the recorded event with its jobs, and every
// rule's outcome with the value of each &&/|| operand, evaluated again
// against the rule set that decided it.
type Trace struct {
	Event record.Event `json:"event"`
	// Explanation is explain's answer for the event against the rule set
	// that decided it (RulesHash); CurrentRules says whether that set is
	// still the active one.
	Explanation  engine.EventExplanation `json:"explanation"`
	CurrentRules bool                    `json:"current_rules"`
	// ActiveRules says the explanation is against the active rules: the
	// set that decided is the active one, or is no longer kept.
	ActiveRules bool `json:"active_rules"`
}

// RuleFile is one candidate rule file: a base name and its content.
type RuleFile struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// RuleFiles is a JSON body of POST /backtest.
type RuleFiles struct {
	Files []RuleFile `json:"files"`
}

// TryResult is what a candidate rule set would do (POST /backtest): its
// problems (then nothing else), its warnings and tests, and the backtest
// diff against the recorded events.
type TryResult struct {
	OK       bool               `json:"ok"`
	Problems []rules.Problem    `json:"problems,omitempty"`
	Warnings []rules.Problem    `json:"warnings,omitempty"`
	Tests    []rules.TestResult `json:"tests,omitempty"`
	Diff     *record.Diff       `json:"diff,omitempty"`
	// Note says what differs from serving these rules.
	Note string `json:"note"`
}

// ListsView is GET /lists's answer: the lists the rules declare, in file
// order, then any other list the store holds (declared once, since
// dropped from the rules).
type ListsView struct {
	Lists []ListInfo `json:"lists"`
}

// ListInfo is one list: its declaration and its size on the replica that
// answered.
type ListInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file,omitempty"`
	Declared    bool   `json:"declared"`
	Members     int    `json:"members"`
	// Importing is the members a replace under way has written so far.
	Importing int `json:"importing,omitempty"`
}

// ListPage is GET /lists/{name}'s answer: one page of members, shard by
// shard and sorted within a shard; NextCursor, when set, is the next page's
// cursor.
type ListPage struct {
	List       string   `json:"list"`
	Members    []string `json:"members"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// ListContains is GET /lists/{name}?contains=M's answer, read from the
// store itself.
type ListContains struct {
	List   string `json:"list"`
	Member string `json:"member"`
	In     bool   `json:"in"`
}

// ListMembers is the JSON body of POST /lists/{name}/add and /remove and
// PUT /lists/{name}; a text body has one member a line instead.
type ListMembers struct {
	Members []string `json:"members"`
}

// ListChanged is a list write's answer: the members written and the
// list's size afterwards on the replica that answered (-1: unknown).
type ListChanged struct {
	List    string `json:"list"`
	Op      string `json:"op"` // add, remove or replace
	Members int    `json:"members"`
	Total   int    `json:"total"`
}
