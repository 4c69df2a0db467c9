package admin

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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

// MountEvents serves the recording: GET /events, GET /events/{id}, GET
// /events/export and POST /backtest. ring may be nil (recording off):
// the endpoints then answer as for an empty recording. reg validates the
// candidate rules of a backtest.
func MountEvents(a *Server, ring *record.Ring, src RuleSource, reg *actions.Registry) {
	a.Handle("GET /events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, before, limit, err := eventQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, listEvents(ring, f, before, limit))
	}))
	a.Handle("GET /events/export", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := record.WriteJSONL(&b, ring.Export()); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
		_, _ = w.Write(b.Bytes())
	}))
	a.Handle("GET /events/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr, status, err := trace(ring, src, r.PathValue("id"))
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
		res := tryRulesWith(files, reg, ring, listsOf(src))
		status := http.StatusOK
		if !res.OK {
			status = http.StatusUnprocessableEntity
		}
		writeJSON(w, status, res)
	}))
}

// listEvents is GET /events's answer; the console's Events page shows it
// too.
func listEvents(ring *record.Ring, f record.Filter, before uint64, limit int) EventList {
	events, next := ring.List(f, before, limit)
	if events == nil {
		events = []record.Event{}
	}
	return EventList{Capacity: ringSize(ring), Events: events, NextBefore: next, Recorded: ring.Len()}
}

func ringSize(ring *record.Ring) int {
	if ring == nil {
		return 0
	}
	return ring.Size()
}

// eventQuery reads GET /events' query: command, account, rule, outcome,
// since (RFC 3339 time or a duration back from now), before (the
// next_before of the previous page) and limit.
func eventQuery(r *http.Request) (record.Filter, uint64, int, error) {
	q := r.URL.Query()
	f := record.Filter{Command: q.Get("command"), Account: q.Get("account"), Rule: q.Get("rule"), Outcome: q.Get("outcome")}
	if err := f.Validate(); err != nil {
		return f, 0, 0, err
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d, derr := time.ParseDuration(s)
			if derr != nil || d < 0 {
				return f, 0, 0, fmt.Errorf("since must be an RFC 3339 time or a duration such as 15m, got %q", s)
			}
			t = time.Now().Add(-d)
		}
		f.Since = t
	}
	var before uint64
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return f, 0, 0, fmt.Errorf("before must be an event id, got %q", s)
		}
		before = n
	}
	limit := defaultEventsLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxEventsLimit {
			return f, 0, 0, fmt.Errorf("limit must be 1 to %d, got %q", maxEventsLimit, s)
		}
		limit = n
	}
	return f, before, limit, nil
}

func trace(ring *record.Ring, src RuleSource, idText string) (*Trace, int, error) {
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("event id must be a number, got %q", idText)
	}
	e, set, ok := ring.Get(id)
	if !ok {
		return nil, http.StatusNotFound, fmt.Errorf("event %d is not recorded (evicted, or never was)", id)
	}
	ev, err := e.Decode()
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	cur := src.Current()
	if set == nil {
		// The set that decided is no longer kept (the ring keeps the
		// hash of old sets, not the sets): explain with the active one,
		// and say so.
		if cur == nil {
			return nil, http.StatusServiceUnavailable, errors.New("the rules that decided this event are no longer kept, and none are loaded")
		}
		set = cur
	}
	ex := engine.Explain(set, []imevent.Event{ev})[0]
	return &Trace{Event: e, Explanation: ex, CurrentRules: cur != nil && cur.Hash() == e.RulesHash,
		ActiveRules: set == cur}, 0, nil
}
