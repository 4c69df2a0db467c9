package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/internal/suggest"
	"github.com/friendflow/friendflow/rules"
)

// CounterStore is the counters' state the admin API reads: a count, and
// the busiest keys by a bounded scan (engine/state.Counters).
type CounterStore interface {
	rules.CounterStore
	TopKeys(ctx context.Context, c rules.Counter, n, scan int, at time.Time) (state.Top, error)
}

// DefaultTop is how many keys GET /counters/{name} and the console show.
const DefaultTop = 20

// MountCounters serves GET /counters/{name}/{key}: a counter of the
// serving rules, read from store (engine/state) without counting; and
// GET /counters/{name}: its busiest keys (?top=N, ?scan=N keys examined
// at most).
func MountCounters(a *Server, src RuleSource, store CounterStore) {
	a.Handle("GET /counters/{name}/{key...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctr, ok := servingCounter(w, src, store, r.PathValue("name"))
		if !ok {
			return
		}
		name, key := ctr.Name, r.PathValue("key")
		now := time.Now()
		n, err := store.Get(r.Context(), ctr, key, now)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "reading counter "+quote(name)+": "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, CounterValue{Counter: name, Key: key, Count: n, Window: ctr.Window.String(), At: now.UTC()})
	}))
	a.Handle("GET /counters/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctr, ok := servingCounter(w, src, store, r.PathValue("name"))
		if !ok {
			return
		}
		n, okN := queryInt(r, "top", DefaultTop, state.MaxTop)
		scan, okS := queryInt(r, "scan", state.DefaultTopScan, state.MaxTopScan)
		if !okN || !okS {
			writeError(w, http.StatusBadRequest, "top and scan: want positive numbers")
			return
		}
		v, err := counterTop(r.Context(), store, ctr, n, scan)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "reading counter "+quote(ctr.Name)+": "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, v)
	}))
}

// counterTop reads ctr's n busiest keys now, examining at most scan.
func counterTop(ctx context.Context, store CounterStore, ctr rules.Counter, n, scan int) (CounterTop, error) {
	now := time.Now()
	top, err := store.TopKeys(ctx, ctr, n, scan, now)
	if err != nil {
		return CounterTop{}, err
	}
	return CounterTop{Counter: ctr.Name, On: ctr.On, Key: ctr.Key, Window: ctr.Window.String(), At: now.UTC(), Top: top}, nil
}

// queryInt reads a positive number from the query (def when absent),
// capped at most.
func queryInt(r *http.Request, name string, def, most int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, false
	}
	return min(n, most), true
}

// servingCounter finds the serving rules' counter name, or answers 404
// (with the closest name) or 503.
func servingCounter(w http.ResponseWriter, src RuleSource, store CounterStore, name string) (rules.Counter, bool) {
	set := src.Current()
	if set == nil {
		writeError(w, http.StatusServiceUnavailable, engine.ErrNoRules.Error())
		return rules.Counter{}, false
	}
	ctrs := set.Counters()
	i := slices.IndexFunc(ctrs, func(c rules.Counter) bool { return c.Name == name })
	if i < 0 {
		writeError(w, http.StatusNotFound, unknownCounter(name, ctrs))
		return rules.Counter{}, false
	}
	if store == nil {
		writeError(w, http.StatusServiceUnavailable, "no counter state")
		return rules.Counter{}, false
	}
	return ctrs[i], true
}

func unknownCounter(name string, ctrs []rules.Counter) string {
	names := make([]string, len(ctrs))
	for j, c := range ctrs {
		names[j] = c.Name
	}
	msg := "no counter " + quote(name) + " in the serving rules"
	if best := suggest.Closest(name, names, 2); best != "" {
		msg += "; did you mean " + quote(best) + "?"
	}
	return msg
}
