package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Page sizes of GET /events.
const (
	defaultEventsLimit = 50
	maxEventsLimit     = 1000
)

// Bounds of GET /events/stream: followers at once (each holds an ordered
// consumer and a connection), how often an idle stream says it is alive,
// and how long one write may take.
const (
	maxFollowers   = 16
	heartbeatEvery = 15 * time.Second
	streamWrite    = 30 * time.Second
)

// followers counts the open GET /events/stream answers of the process.
var followers atomic.Int32

// MountEvents serves the recording: GET /events, GET /events/{id}, GET
// /events/export, GET /events/stream and POST /backtest. log may be nil
// (recording off): the endpoints then answer as for an empty recording.
// reg validates the candidate rules of a backtest.
func MountEvents(a *Server, log *record.Log, src RuleSource, reg *actions.Registry) {
	a.Handle("GET /events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, cursor, limit, err := eventQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		l, err := listEvents(r.Context(), log, f, cursor, limit)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, l)
	}))
	a.Handle("GET /events/export", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _, _, err := eventQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		exportEvents(w, r, log, f)
	}))
	a.Handle("GET /events/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streamEvents(w, r, log)
	}))
	a.Handle("GET /events/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, status, err := trace(r.Context(), log, src, r.PathValue("id"))
		if err != nil {
			writeError(w, status, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, tr)
	}))
	a.Handle("POST /backtest", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files, err := readRuleFiles(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		res := tryRulesWith(r.Context(), files, reg, log, listsOf(src))
		status := http.StatusOK
		if !res.OK {
			status = http.StatusUnprocessableEntity
		}
		writeJSON(w, status, res)
	}))
}

// listEvents is GET /events's answer; the console's Events page shows it
// too.
func listEvents(ctx context.Context, log *record.Log, f record.Filter, cursor uint64, limit int) (EventList, error) {
	events, next, err := log.List(ctx, f, cursor, limit)
	if events == nil {
		events = []record.Event{}
	}
	return EventList{Capacity: log.Size(), Events: events, Next: next, Recorded: log.Len(ctx)}, err
}

// exportEvents writes the events f selects as JSONL, oldest first, as
// they are read: the answer is never held whole.
func exportEvents(w http.ResponseWriter, r *http.Request, log *record.Log, f record.Filter) {
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	err := log.Export(r.Context(), f, func(e *record.Event) error {
		if n%256 == 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(streamWrite))
		}
		n++
		return enc.Encode(e)
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && n == 0 {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if err != nil {
		// Headers are gone: cut the answer short so that the client
		// sees a broken stream, not a complete one.
		panic(http.ErrAbortHandler)
	}
}

// streamEvents is GET /events/stream: server-sent events, one "event"
// per recorded event the filters select, from the next one stored (or
// from cursor, or after Last-Event-ID), until the client goes away.
// https://html.spec.whatwg.org/multipage/server-sent-events.html
func streamEvents(w http.ResponseWriter, r *http.Request, log *record.Log) {
	f, from, _, err := eventQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if id, perr := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); perr == nil {
		from = id + 1
	}
	if followers.Add(1) > maxFollowers {
		followers.Add(-1)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("more than %d event streams are open", maxFollowers))
		return
	}
	defer followers.Add(-1)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies: pass each event on
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(streamWrite))
	_, _ = fmt.Fprint(w, ": friendflow events\n\n")
	_ = rc.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan []byte, 64)
	go func() {
		defer close(events)
		_ = log.Follow(ctx, f, from, func(e *record.Event) error {
			b, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			b = fmt.Appendf(nil, "id: %d\nevent: event\ndata: %s\n\n", e.ID, b)
			select {
			case events <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		var b []byte
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			b = []byte(": alive\n\n")
		case e, ok := <-events:
			if !ok {
				return
			}
			b = e
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWrite))
		if _, err := w.Write(b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// eventQuery reads GET /events' query: command, account, rule, outcome,
// since and until (RFC 3339 times or durations back from now), cursor (the
// next of the previous page; before is its older name) and limit.
func eventQuery(r *http.Request) (record.Filter, uint64, int, error) {
	q := r.URL.Query()
	f := record.Filter{Command: q.Get("command"), Account: q.Get("account"), Rule: q.Get("rule"), Outcome: q.Get("outcome")}
	now := time.Now()
	var err error
	if f.Since, err = parseWhen("since", q.Get("since"), now); err != nil {
		return f, 0, 0, err
	}
	if f.Until, err = parseWhen("until", q.Get("until"), now); err != nil {
		return f, 0, 0, err
	}
	if err := f.Validate(); err != nil {
		return f, 0, 0, err
	}
	var cursor uint64
	for _, name := range []string{"before", "cursor"} {
		if s := q.Get(name); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return f, 0, 0, fmt.Errorf("%s must be an event id, got %q", name, s)
			}
			cursor = n
		}
	}
	limit := defaultEventsLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxEventsLimit {
			return f, 0, 0, fmt.Errorf("limit must be 1 to %d, got %q", maxEventsLimit, s)
		}
		limit = n
	}
	return f, cursor, limit, nil
}

func trace(ctx context.Context, log *record.Log, src RuleSource, idText string) (*Trace, int, error) {
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("event id must be a number, got %q", idText)
	}
	e, set, ok, err := log.Get(ctx, id)
	if err != nil {
		return nil, http.StatusServiceUnavailable, err
	}
	if !ok {
		return nil, http.StatusNotFound, fmt.Errorf("event %d is not recorded (past --record-events or --record-max-age, or never was)", id)
	}
	ev, err := e.Decode()
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	cur := src.Current()
	if set == nil {
		// The set that decided is not known here (an older one, or
		// another replica's): explain with the active one, and say so.
		if cur == nil {
			return nil, http.StatusServiceUnavailable, errors.New("the rules that decided this event are no longer kept, and none are loaded")
		}
		set = cur
	}
	ex := engine.Explain(set, []imevent.Event{ev})[0]
	return &Trace{Event: e, Explanation: ex, CurrentRules: cur != nil && cur.Hash() == e.RulesHash,
		ActiveRules: set == cur}, 0, nil
}
