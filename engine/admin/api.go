package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

// RuleSource is the active rule set and its reloading (reload.Reloader).
type RuleSource interface {
	Current() *rules.Set
	Status() reload.Status
	Reload(reason string) error
}

// DeadLetterStore is what the /dlq endpoints operate on (queue.Queue).
type DeadLetterStore interface {
	DeadLetters(ctx context.Context) ([]queue.DeadLetter, error)
	// DeadLetter is one dead letter, secret parameters redacted; an
	// unknown id is a *queue.UnknownIDsError.
	DeadLetter(ctx context.Context, id string) (queue.DeadLetter, error)
	Replay(ctx context.Context, ids []string) (int, error)
	Drop(ctx context.Context, ids []string) (int, error)
}

// MountRules serves GET /rules, POST /reload and POST /explain.
func MountRules(a *Server, src RuleSource, sdkappid int) {
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
			// Not 200: a failed reload must never look like a success to a
			// script or probe that only checks the status code.
			writeJSON(w, http.StatusUnprocessableEntity, out)
			return
		}
		set := src.Current()
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "hash": set.Hash(), "rules": set.Len()})
	}))
	a.Handle("POST /explain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := src.Current()
		if set == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": engine.ErrNoRules.Error()})
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, imcallback.DefaultMaxBody))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		events, err := imcallback.ParseEvents(data, r.URL.Query().Get("command"), sdkappid)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, engine.Explain(set, events))
	}))
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

func detail(d queue.DeadLetter) DeadLetterDetail {
	out := DeadLetterDetail{
		DeadLetterView: view(d), Reason: d.Reason, DeadAt: d.DeadAt,
		CallbackID: d.Job.CallbackID, OnceKey: d.Job.OnceKey, Params: d.Job.Params, Errors: d.Job.Errors,
	}
	if out.Errors == nil {
		out.Errors = []queue.AttemptError{}
	}
	if json.Valid(d.Job.Event) {
		out.Event = json.RawMessage(d.Job.Event)
	}
	return out
}

func view(d queue.DeadLetter) DeadLetterView {
	return DeadLetterView{d.ID, d.Rule, d.Action, d.LastError, d.Attempts, d.FirstAttempt, d.LastAttempt}
}

// dlqError answers a failed dead-letter operation: 404 naming unknown ids,
// else 503 (the store did not answer).
func dlqError(w http.ResponseWriter, err error, extra map[string]any) {
	out := map[string]any{"error": err.Error()}
	maps.Copy(out, extra)
	status := http.StatusServiceUnavailable
	if unknown := (*queue.UnknownIDsError)(nil); errors.As(err, &unknown) {
		status, out["unknown_ids"] = http.StatusNotFound, unknown.IDs
	}
	writeJSON(w, status, out)
}

// MountDLQ serves GET /dlq, GET /dlq/{id}, POST /dlq/replay and POST /dlq/drop.
func MountDLQ(a *Server, store DeadLetterStore) {
	a.Handle("GET /dlq", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dls, err := store.DeadLetters(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		out := make([]DeadLetterView, len(dls))
		for i, d := range dls {
			out[i] = view(d)
		}
		writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out, "count": len(out)})
	}))
	a.Handle("GET /dlq/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := store.DeadLetter(r.Context(), r.PathValue("id"))
		if err != nil {
			dlqError(w, err, nil)
			return
		}
		writeJSON(w, http.StatusOK, detail(d))
	}))
	op := func(name, past string, fn func(context.Context, []string) (int, error)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				IDs []string `json:"ids"`
				All bool     `json:"all"`
			}
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, imcallback.DefaultMaxBody))
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
			if unknown := (*queue.UnknownIDsError)(nil); errors.As(err, &unknown) {
				dlqError(w, err, map[string]any{past: n})
				return
			}
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
