package record

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// DefaultSize is --record-events' default.
const DefaultSize = 10000

// Bounds of one recorded event: a signed 1 MiB callback body must not
// become 10 000 of them in memory. An event whose JSON is longer than
// maxEventJSON has its strings clipped to the first of clipBytes that
// brings it under, and is marked Truncated. Real events stay well under:
// Tencent's UserIDs are at most 32 bytes.
const maxEventJSON = 2 << 10

var clipBytes = []int{256, 64, 16}

// Job outcomes as recorded: queue's, and "queued" before the first run.
const (
	JobQueued   = "queued"
	JobDone     = queue.OutcomeDone
	JobRetrying = "retrying"
	JobDead     = queue.OutcomeDead
	// JobCancelled: dropped unrun by its cancel_on; LastError says by
	// which event.
	JobCancelled = queue.OutcomeCancelled
	// JobSkipped: the action decided not to run; LastError says why.
	JobSkipped = queue.OutcomeSkipped
)

// Job is one job an event created and what became of it.
type Job struct {
	ID        string    `json:"id"`
	Rule      string    `json:"rule"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"` // queued, done, retrying, dead, cancelled or skipped
	Attempt   int       `json:"attempt,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// OnceSkip is a rule that matched but whose actions its once key skipped:
// the key was first seen at FirstSeen by callback FirstCallback (either
// empty when the once bucket could not say).
type OnceSkip struct {
	Rule          string    `json:"rule"`
	Key           string    `json:"key"`
	FirstSeen     time.Time `json:"first_seen,omitzero"`
	FirstCallback string    `json:"first_callback,omitempty"`
}

// Event is one recorded event. Outcomes is derived when read (Ring.Export,
// Ring.Outcomes): the ring itself keeps only the names of the rules that
// matched.
type Event struct {
	ID         uint64          `json:"id"`
	CallbackID string          `json:"callback_id"`
	Received   time.Time       `json:"received"`
	Command    string          `json:"command"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	Data       json.RawMessage `json:"event"` // the event, JSON with Tencent's field names
	Truncated  bool            `json:"truncated,omitempty"`
	RulesHash  string          `json:"rules_hash"`
	// Matched are the rules whose when was true, in file order; Shadow
	// says which of them are shadow rules.
	Matched []string `json:"matched"`
	Shadow  []string `json:"shadow,omitempty"`
	// Errors are the rules that failed at run time (counted as not
	// matched), in file order.
	Errors []string `json:"errors,omitempty"`
	// Decision is the reply's ResultItem for this target (Prev commands).
	Decision *imcallback.ResultItem `json:"decision,omitempty"`
	// StoreError says why the callback's jobs were not stored (the reply
	// was FAIL, or a Prev reply carried its decisions anyway).
	StoreError string `json:"store_error,omitempty"`
	// OnceSkipped are the matched rules whose once key was seen before:
	// they made no jobs.
	OnceSkipped []OnceSkip      `json:"once_skipped,omitempty"`
	Jobs        []Job           `json:"jobs"`
	Outcomes    []rules.Outcome `json:"outcomes,omitempty"`

	decoded *imevent.Event // Data decoded, when an Export already did
}

// entry is an Event with the set that decided it, found by its hash
// when the event is read: the ring itself holds only the hash (RulesHash),
// so that old rule sets are not kept alive by the events they decided.
type entry struct {
	Event
	set *rules.Set
}

// keptSets is how many recent rule sets the ring keeps to derive the
// outcomes of the events they decided: the active one and the one before.
// Events decided by an older set show no derived outcomes.
const keptSets = 2

// Ring is a bounded, concurrency-safe record of the most recent events.
// The zero Ring records nothing; use New.
type Ring struct {
	mu   sync.Mutex
	buf  []entry
	next uint64 // ID of the next event; event id lives in buf[(id-1)%len(buf)]
	// byCallback maps a callback with jobs to its first event's ID, for
	// the queue's job hooks.
	byCallback map[string]uint64
	now        func() time.Time
	scratch    []byte // an event's JSON before it is copied to its own size
	// sets are the most recent rule sets that decided, newest first, at
	// most keptSets.
	sets []*rules.Set
}

// New returns a ring of size events; nil when size is 0 (recording off).
func New(size int) *Ring {
	if size <= 0 {
		return nil
	}
	return &Ring{buf: make([]entry, size), next: 1, byCallback: map[string]uint64{}, now: time.Now}
}

// Size is the ring's capacity.
func (r *Ring) Size() int { return len(r.buf) }

// Record implements engine.Recorder: it keeps every event of cb with what
// the engine made of it. It copies what it keeps: cb, matches and jobs
// are reused by the engine after it returns.
func (r *Ring) Record(set *rules.Set, cb *imcallback.Callback, matches [][]rules.Match, errs [][]rules.RuleError, decisions []imcallback.ResultItem, jobs []queue.Job, skips []queue.OnceSkip, storeErr error) {
	received := cb.ReceivedAt
	if received.IsZero() {
		received = r.now()
	}
	var errText string
	if storeErr != nil {
		errText = storeErr.Error()
	}
	hash := set.Hash()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keep(set)
	first := r.next
	rest := jobs
	for i := range cb.Events {
		ev := &cb.Events[i]
		e := r.slot()
		e.ID, e.CallbackID, e.Received, e.Command = r.next-1, cb.ID, received, cb.Command
		// One allocation for both: the event's strings point into the
		// whole body, which must not stay alive with them.
		from, to := clip(ev.From_Account, clipBytes[0]), clip(ev.To_Account, clipBytes[0])
		both := from + to
		e.From, e.To = both[:len(from)], both[len(from):]
		r.scratch = imevent.AppendEventJSON(r.scratch[:0], ev)
		e.Data, e.Truncated = eventJSON(r.scratch)
		e.RulesHash, e.StoreError = hash, errText
		if i < len(matches) {
			e.Matched, e.Shadow = names(matches[i])
		}
		if i < len(errs) && errs[i] != nil {
			e.Errors = make([]string, len(errs[i]))
			for k, re := range errs[i] {
				e.Errors[k] = re.Rule
			}
		}
		if i < len(decisions) {
			d := decisions[i]
			d.To_Account = e.To
			e.Decision = &d
		}
		e.Jobs, rest = jobsOf(rest, cb.ID, i)
		e.OnceSkipped, skips = skipsOf(skips, i)
	}
	if len(jobs) > 0 && storeErr == nil {
		r.byCallback[cb.ID] = first
	}
}

// keep makes set the newest of the kept sets. Callers hold mu.
func (r *Ring) keep(set *rules.Set) {
	if set == nil || len(r.sets) > 0 && r.sets[0] == set {
		return
	}
	hash := set.Hash()
	r.sets = slices.DeleteFunc(r.sets, func(s *rules.Set) bool { return s.Hash() == hash })
	if len(r.sets) == keptSets {
		r.sets[len(r.sets)-1] = nil
		r.sets = r.sets[:len(r.sets)-1]
	}
	r.sets = slices.Insert(r.sets, 0, set)
}

// setOf returns the kept set of hash, nil when it is no longer kept.
// Callers hold mu.
func (r *Ring) setOf(hash string) *rules.Set {
	for _, s := range r.sets {
		if s.Hash() == hash {
			return s
		}
	}
	return nil
}

// slot takes the next entry, evicting the oldest, and returns it cleared.
func (r *Ring) slot() *entry {
	e := &r.buf[(r.next-1)%uint64(len(r.buf))]
	if e.ID != 0 && r.byCallback[e.CallbackID] == e.ID {
		delete(r.byCallback, e.CallbackID)
	}
	*e = entry{}
	r.next++
	return e
}

// names returns the rules of ms and the shadow ones among them, in one
// allocation.
func names(ms []rules.Match) (matched, shadow []string) {
	if len(ms) == 0 {
		return nil, nil
	}
	n := len(ms)
	for _, m := range ms {
		if m.Shadow {
			n++
		}
	}
	all := make([]string, len(ms), n)
	for i, m := range ms {
		all[i] = m.Rule
		if m.Shadow {
			all = append(all, m.Rule)
		}
	}
	if n == len(ms) {
		return all, nil
	}
	return all[:len(ms):len(ms)], all[len(ms):]
}

// jobsOf returns the jobs of event i, which start jobs, and the jobs
// after them: the engine makes a callback's jobs in event order and names
// each callbackID-event-match-action. One pass over a callback's jobs,
// not one per event: a 1000-pair callback can have thousands.
func jobsOf(jobs []queue.Job, cbID string, i int) ([]Job, []queue.Job) {
	n := 0
	for n < len(jobs) && eventOfJob(jobs[n].ID, cbID) == i {
		n++
	}
	if n == 0 {
		return nil, jobs
	}
	out := make([]Job, n)
	for k := range out {
		j := &jobs[k]
		out[k] = Job{ID: j.ID, Rule: j.Rule, Action: j.Action, Outcome: JobQueued}
	}
	return out, jobs[n:]
}

// skipsOf returns the once skips of event i, which start skips, and the
// skips after them. Keys are clipped like the event's strings: they are
// rendered from callers' data.
func skipsOf(skips []queue.OnceSkip, i int) ([]OnceSkip, []queue.OnceSkip) {
	n := 0
	for n < len(skips) && skips[n].Event == i {
		n++
	}
	if n == 0 {
		return nil, skips
	}
	out := make([]OnceSkip, n)
	for k, s := range skips[:n] {
		out[k] = OnceSkip{Rule: s.Rule, Key: strings.Clone(clip(s.Key, clipBytes[0])), FirstSeen: s.Seen.At, FirstCallback: s.Seen.CallbackID}
	}
	return out, skips[n:]
}

// eventOfJob is the event index in a job ID, -1 when it has none.
func eventOfJob(id, cbID string) int {
	rest, ok := strings.CutPrefix(id, cbID)
	if !ok {
		return -1
	}
	if rest, ok = strings.CutPrefix(rest, "-"); !ok {
		return -1
	}
	n, _, _ := strings.Cut(rest, "-")
	i, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return i
}

// eventJSON copies an event's JSON b, clipped when it is over
// maxEventJSON.
func eventJSON(b []byte) (json.RawMessage, bool) {
	if len(b) <= maxEventJSON {
		return bytes.Clone(b), false
	}
	var out []byte
	for _, n := range clipBytes {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return json.RawMessage(`{}`), true
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				m[k] = clip(s, n)
			}
		}
		var err error
		if out, err = json.Marshal(m); err != nil {
			return json.RawMessage(`{}`), true
		}
		if len(out) <= maxEventJSON {
			break
		}
	}
	return out, true
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Hooks returns next with JobFinished also recording each job's outcome
// on the event that created it.
func (r *Ring) Hooks(next queue.Hooks) queue.Hooks {
	if r == nil {
		return next
	}
	prev := next.JobFinished
	next.JobFinished = func(job *queue.Job, outcome string, err error, took time.Duration) {
		if prev != nil {
			prev(job, outcome, err, took)
		}
		r.jobFinished(job, outcome, err)
	}
	return next
}

func (r *Ring) jobFinished(job *queue.Job, outcome string, err error) {
	i := eventOfJob(job.ID, job.CallbackID)
	if i < 0 {
		return
	}
	if outcome == queue.OutcomeRetried {
		outcome = JobRetrying
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	first, ok := r.byCallback[job.CallbackID]
	if !ok {
		return
	}
	e := r.at(first + uint64(i))
	if e == nil || e.CallbackID != job.CallbackID {
		return
	}
	for k := range e.Jobs {
		j := &e.Jobs[k]
		if j.ID != job.ID {
			continue
		}
		j.Outcome, j.Attempt, j.Updated, j.LastError = outcome, job.Attempt, now, ""
		if err != nil {
			j.LastError = err.Error()
		}
	}
}

// at returns the entry of id while the ring holds it. Callers hold mu.
func (r *Ring) at(id uint64) *entry {
	if id == 0 || id >= r.next || r.next-id > uint64(len(r.buf)) {
		return nil
	}
	return &r.buf[(id-1)%uint64(len(r.buf))]
}
