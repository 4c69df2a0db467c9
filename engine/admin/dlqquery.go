package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
)

// filter is f as the queue takes it, times read against now.
func (f DeadFilterJSON) filter(now time.Time) (queue.DeadFilter, error) {
	out := queue.DeadFilter{Rule: f.Rule, Kind: f.Kind, Error: f.Error}
	var err error
	if out.Since, err = parseWhen("since", f.Since, now); err != nil {
		return out, err
	}
	out.Until, err = parseWhen("until", f.Until, now)
	return out, err
}

func parseWhen(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s: %q is neither an RFC 3339 time nor a duration like 1h", name, s)
}

// deadFilterQuery reads a filter from query parameters.
func deadFilterQuery(v url.Values) DeadFilterJSON {
	return DeadFilterJSON{Rule: v.Get("rule"), Kind: v.Get("kind"), Error: v.Get("error"), Since: v.Get("since"), Until: v.Get("until")}
}

// deadQuery reads GET /dlq's (and the console's) parameters: the filter,
// limit, cursor and order=newest.
func deadQuery(v url.Values, now time.Time) (queue.DeadQuery, error) {
	f, err := deadFilterQuery(v).filter(now)
	dq := queue.DeadQuery{DeadFilter: f, Cursor: v.Get("cursor"), Newest: v.Get("order") == "newest"}
	if err != nil {
		return dq, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > queue.MaxDeadPage {
			return dq, fmt.Errorf("limit: %q is not a number from 1 to %d", s, queue.MaxDeadPage)
		}
		dq.Limit = n
	}
	switch o := v.Get("order"); o {
	case "", "oldest", "newest":
	default:
		return dq, fmt.Errorf("order: %q is neither oldest nor newest", o)
	}
	return dq, nil
}

// dlqOp serves POST /dlq/replay and POST /dlq/drop (name): by id, or by
// filter (all: the empty one) in one go or in steps.
func dlqOp(name string, byID func(context.Context, []string) (int, error), where func(context.Context, queue.DeadSweep) (queue.SweepResult, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req DeadLetterSelection
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, imcallback.DefaultMaxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "body must be {\"ids\":[…]}, {\"all\":true} or {\"filter\":{…}}: "+err.Error())
			return
		}
		if n := btoi(len(req.IDs) > 0) + btoi(req.All) + btoi(req.Filter != nil); n != 1 {
			writeError(w, http.StatusBadRequest, name+" takes ids, all:true or a filter, exactly one of them")
			return
		}
		if len(req.IDs) > 0 {
			if req.DryRun || req.Cursor != "" || req.Limit != 0 {
				writeError(w, http.StatusBadRequest, "dry_run, cursor and limit go with all or a filter, not ids")
				return
			}
			n, err := byID(r.Context(), req.IDs)
			status, out := moved(name, n, err)
			writeJSON(w, status, out)
			return
		}
		s := queue.DeadSweep{Cursor: req.Cursor, Limit: req.Limit, DryRun: req.DryRun}
		if req.Filter != nil {
			f, err := req.Filter.filter(time.Now())
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			s.DeadFilter = f
		}
		if req.Limit < 0 {
			writeError(w, http.StatusBadRequest, "limit must not be negative")
			return
		}
		res, err := where(r.Context(), s)
		if errors.Is(err, queue.ErrBadCursor) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		status, out := moved(name, res.N, err)
		out.Next, out.DryRun = res.Next, req.DryRun
		writeJSON(w, status, out)
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
