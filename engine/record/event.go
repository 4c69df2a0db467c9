package record

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// DefaultSize is --record-events' default, and DefaultMaxAge
// --record-max-age's.
const (
	DefaultSize   = queue.DefaultRecordEvents
	DefaultMaxAge = queue.DefaultRecordMaxAge
)

// Bounds of one recorded event: a signed 1 MiB callback body must not
// become 10 000 of them in the store. An event whose JSON is longer than
// maxEventJSON has its strings clipped to the first of clipBytes that
// brings it under, and is marked Truncated. Real events stay well under:
// Tencent's UserIDs are at most 32 bytes.
const maxEventJSON = 2 << 10

var clipBytes = []int{256, 64, 16}

// Job outcomes as recorded: queue's, "queued" before the first run and
// "replayed" when an operator queued a dead letter again.
const (
	JobQueued   = "queued"
	JobDone     = queue.OutcomeDone
	JobRetrying = "retrying"
	JobDead     = queue.OutcomeDead
	// JobCancelled: dropped unrun by its cancel_on; the error says by
	// which event.
	JobCancelled = queue.OutcomeCancelled
	// JobSkipped: the action decided not to run; the error says why.
	JobSkipped  = queue.OutcomeSkipped
	JobReplayed = "replayed"
)

// Job is one job an event created and what became of it.
type Job struct {
	ID        string    `json:"id"`
	Rule      string    `json:"rule"`
	Action    string    `json:"action"`
	Outcome   string    `json:"outcome"` // queued, done, retrying, dead, cancelled, skipped or replayed
	Attempt   int       `json:"attempt,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
}

// JobUpdate is one thing that happened to a job after its event was
// recorded: an attempt's outcome (retrying, done, dead) or a replay.
type JobUpdate struct {
	Job     string    `json:"job"`
	Outcome string    `json:"outcome"`
	Attempt int       `json:"attempt,omitempty"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
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

// Event is one recorded event; ID is its sequence in the events stream.
// Outcomes is derived when read (Export): the store keeps only the names
// of the rules that matched. Trace is filled in by Get.
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
	OnceSkipped []OnceSkip `json:"once_skipped,omitempty"`
	Jobs        []Job      `json:"jobs"`
	// Trace is what happened to the jobs since, oldest first.
	Trace    []JobUpdate     `json:"trace,omitempty"`
	Outcomes []rules.Outcome `json:"outcomes,omitempty"`

	decoded *imevent.Event // Data decoded, when an Export already did
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
		return appendCompact(make([]byte, 0, len(b)), b), false
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
