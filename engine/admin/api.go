package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
	// ListDead is one page of dead letters; a cursor it did not make is
	// queue.ErrBadCursor.
	ListDead(ctx context.Context, q queue.DeadQuery) (queue.DeadPage, error)
	// DeadLetter is one dead letter, secret parameters redacted; an
	// unknown id is a *queue.UnknownIDsError.
	DeadLetter(ctx context.Context, id string) (queue.DeadLetter, error)
	Replay(ctx context.Context, ids []string) (int, error)
	Drop(ctx context.Context, ids []string) (int, error)
	// ReplayWhere and DropWhere act on the dead letters a filter picks,
	// one at a time, up to a limit from a cursor.
	ReplayWhere(ctx context.Context, s queue.DeadSweep) (queue.SweepResult, error)
	DropWhere(ctx context.Context, s queue.DeadSweep) (queue.SweepResult, error)
}

// MountRules serves GET /rules, POST /reload and POST /explain.
func MountRules(a *Server, src RuleSource, sdkappid int) {
	a.Handle("GET /rules", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rulesView(src.Current(), src.Status()))
	}))
	a.Handle("POST /reload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := src.Reload("admin: POST /reload"); err != nil {
			out := ReloadFailed{Error: err.Error()}
			var le *rules.LoadError
			if errors.As(err, &le) {
				out.Problems = le.Problems
			}
			if set := src.Current(); set != nil {
				out.ServingHash = set.Hash()
			}
			// Not 200: a failed reload must never look like a success to a
			// script or probe that only checks the status code.
			writeJSON(w, http.StatusUnprocessableEntity, out)
			return
		}
		set := src.Current()
		writeJSON(w, http.StatusOK, Reloaded{Hash: set.Hash(), OK: true, Rules: set.Len()})
	}))
	a.Handle("POST /explain", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := src.Current()
		if set == nil {
			writeError(w, http.StatusServiceUnavailable, engine.ErrNoRules.Error())
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, imcallback.DefaultMaxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		events, err := imcallback.ParseEvents(data, r.URL.Query().Get("command"), sdkappid)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, engine.Explain(set, events))
	}))
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

// rulesView is GET /rules's answer, for the set serving (nil: none) and
// the reloads' status; the console's Rules page shows it too.
func rulesView(set *rules.Set, st reload.Status) RulesView {
	v := RulesView{Status: st}
	if set != nil {
		v.Files, v.Hash, v.Rules = set.Files(), set.Hash(), set.Rules()
	}
	return v
}

// dlqError answers GET /dlq/{id} when it fails: 404 naming unknown ids,
// else 503 (the store did not answer).
func dlqError(w http.ResponseWriter, err error) {
	out := ErrorBody{Error: err.Error()}
	status := http.StatusServiceUnavailable
	if unknown := (*queue.UnknownIDsError)(nil); errors.As(err, &unknown) {
		status, out.UnknownIDs = http.StatusNotFound, unknown.IDs
	}
	writeJSON(w, status, out)
}

// MountDLQ serves GET /dlq, GET /dlq/{id}, POST /dlq/replay and POST /dlq/drop.
func MountDLQ(a *Server, store DeadLetterStore) {
	a.Handle("GET /dlq", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dq, err := deadQuery(r.URL.Query(), time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		page, err := store.ListDead(r.Context(), dq)
		if errors.Is(err, queue.ErrBadCursor) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		out := make([]DeadLetterView, len(page.DeadLetters))
		for i, d := range page.DeadLetters {
			out[i] = view(d)
		}
		writeJSON(w, http.StatusOK, DeadLetterList{Count: len(out), DeadLetters: out, Total: page.Total, Next: page.Next})
	}))
	a.Handle("GET /dlq/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := store.DeadLetter(r.Context(), r.PathValue("id"))
		if err != nil {
			dlqError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, detail(d))
	}))
	a.Handle("POST /dlq/replay", dlqOp("replay", store.Replay, store.ReplayWhere))
	a.Handle("POST /dlq/drop", dlqOp("drop", store.Drop, store.DropWhere))
}

// moved is the answer of a replay or drop (name) that moved n dead
// letters: 200; on err, 404 naming unknown ids, else 500.
func moved(name string, n int, err error) (int, DeadLettersMoved) {
	var out DeadLettersMoved
	if name == "replay" {
		out.Replayed = &n
	} else {
		out.Dropped = &n
	}
	if err == nil {
		return http.StatusOK, out
	}
	out.Error = err.Error()
	if unknown := (*queue.UnknownIDsError)(nil); errors.As(err, &unknown) {
		out.UnknownIDs = unknown.IDs
		return http.StatusNotFound, out
	}
	return http.StatusInternalServerError, out
}
