package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

// RuleSource is the active rule set and its reloading (rules.Reloader).
type RuleSource interface {
	Current() *rules.Set
	Status() rules.ReloadStatus
	Reload(reason string) error
}

// DeadLetterStore is what the /dlq endpoints operate on (queue.Queue).
type DeadLetterStore interface {
	DeadLetters(ctx context.Context) ([]queue.DeadLetter, error)
	Replay(ctx context.Context, ids []string) (int, error)
	Drop(ctx context.Context, ids []string) (int, error)
}

// MountRules serves GET /rules, POST /reload and POST /explain.
func MountRules(a *Admin, src RuleSource, sdkappid int) {
	a.Handle("GET /rules", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"status": src.Status()}
		if set := src.Current(); set != nil {
			out["hash"] = set.Hash()
			out["files"] = set.Files()
			out["rules"] = set.Rules()
		}
		writeJSON(w, http.StatusOK, out)
	}))
	a.Handle("POST /reload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := src.Reload("admin: POST /reload"); err != nil {
			out := map[string]any{"ok": false, "error": err.Error()}
			var le *rules.LoadError
			if errors.As(err, &le) {
				out["problems"] = le.Problems
			}
			if set := src.Current(); set != nil {
				out["serving_hash"] = set.Hash()
			}
			// Not 200: a failed reload must never look like a success
			// (Alertmanager #1152).
			writeJSON(w, http.StatusUnprocessableEntity, out)
			return
		}
		set := src.Current()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "hash": set.Hash(), "rules": set.Len()})
	}))
	a.Handle("POST /explain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := src.Current()
		if set == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": ErrNoRules.Error()})
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, DefaultMaxBody))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		events, err := ExplainEvents(data, r.URL.Query().Get("command"), sdkappid)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, Explain(set, events))
	}))
}

// EventExplanation is what explain says about one event.
type EventExplanation struct {
	Event     rules.Event       `json:"event"`
	Decision  *ResultItem       `json:"decision,omitempty"`   // Prev commands: the reply's ResultItem for this target
	DecidedBy string            `json:"decided_by,omitempty"` // the rule that denied
	Rules     []rules.RuleTrace `json:"rules"`
}

// Explain evaluates events against set without side effects.
func Explain(set *rules.Set, events []rules.Event) []EventExplanation {
	out := make([]EventExplanation, len(events))
	for i := range events {
		ev := &events[i]
		out[i] = EventExplanation{Event: *ev, Rules: set.Explain(ev)}
		if rules.IsPrev(ev.CallbackCommand) {
			d := set.Decide(ev)
			out[i].Decision = &ResultItem{To_Account: ev.To_Account, ResultCode: d.Code, ResultInfo: d.Reason}
			out[i].DecidedBy = d.Rule
		}
	}
	return out
}

// ExplainEvents reads what a user hands explain: a callback body (with a
// PairList, FriendItem or ResponseFriendItem) becomes its events, exactly
// as the receiver would decode it; anything else is taken as one event
// written with the event's field names. command, when set, names the
// command (otherwise the body's CallbackCommand, or Sns.CallbackFriendAdd).
func ExplainEvents(data []byte, command string, sdkappid int) ([]rules.Event, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object: %w", err)
	}
	if command == "" {
		if raw, ok := probe["CallbackCommand"]; ok {
			_ = json.Unmarshal(raw, &command)
		}
	}
	if command == "" {
		command = rules.CmdFriendAdd
	}
	if !rules.IsCommand(command) {
		return nil, fmt.Errorf("unknown command %q (one of %v)", command, rules.Commands)
	}
	_, pairs := probe["PairList"]
	_, items := probe["FriendItem"]
	_, resp := probe["ResponseFriendItem"]
	if pairs || items || resp {
		if _, ok := probe["CallbackCommand"]; !ok {
			probe["CallbackCommand"], _ = json.Marshal(command)
			data, _ = json.Marshal(probe)
		}
		cb := &Callback{Command: command, SdkAppid: sdkappid, ReceivedAt: time.Now()}
		if err := Decode(data, cb); err != nil {
			return nil, err
		}
		return cb.Events, nil
	}
	ev := rules.Event{CallbackCommand: command, SdkAppid: sdkappid}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("reading the event: %w", err)
	}
	if ev.CallbackCommand != command {
		return nil, fmt.Errorf("the event's CallbackCommand %q differs from --command %q", ev.CallbackCommand, command)
	}
	if ev.EventTime == 0 {
		ev.EventTime = int(time.Now().UnixMilli())
	}
	if ev.PairCount == 0 {
		ev.PairCount = 1
	}
	return []rules.Event{ev}, nil
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

// MountDLQ serves GET /dlq, POST /dlq/replay and POST /dlq/drop.
func MountDLQ(a *Admin, store DeadLetterStore) {
	a.Handle("GET /dlq", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dls, err := store.DeadLetters(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		out := make([]DeadLetterView, len(dls))
		for i, d := range dls {
			out[i] = DeadLetterView{d.ID, d.Rule, d.Action, d.LastError, d.Attempts, d.FirstAttempt, d.LastAttempt}
		}
		writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out, "count": len(out)})
	}))
	op := func(name, past string, fn func(context.Context, []string) (int, error)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				IDs []string `json:"ids"`
				All bool     `json:"all"`
			}
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, DefaultMaxBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"ids\":[…]} or {\"all\":true}: " + err.Error()})
				return
			}
			if req.All == (len(req.IDs) > 0) {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": name + " takes ids or all:true, exactly one of them"})
				return
			}
			ids := req.IDs
			if req.All {
				ids = nil // the queue's "every dead letter"
			}
			n, err := fn(r.Context(), ids)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error(), past: n})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{past: n})
		})
	}
	a.Handle("POST /dlq/replay", op("replay", "replayed", store.Replay))
	a.Handle("POST /dlq/drop", op("drop", "dropped", store.Drop))
}
