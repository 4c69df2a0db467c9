package admin

import (
	"net/http"
	"slices"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/internal/suggest"
	"github.com/friendflow/friendflow/rules"
)

// MountCounters serves GET /counters/{name}/{key}: a counter of the
// serving rules, read from store (engine/state) without counting.
func MountCounters(a *Server, src RuleSource, store rules.CounterStore) {
	a.Handle("GET /counters/{name}/{key...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := src.Current()
		if set == nil {
			writeError(w, http.StatusServiceUnavailable, engine.ErrNoRules.Error())
			return
		}
		name, key := r.PathValue("name"), r.PathValue("key")
		ctrs := set.Counters()
		i := slices.IndexFunc(ctrs, func(c rules.Counter) bool { return c.Name == name })
		if i < 0 {
			names := make([]string, len(ctrs))
			for j, c := range ctrs {
				names[j] = c.Name
			}
			msg := "no counter " + quote(name) + " in the serving rules"
			if best := suggest.Closest(name, names, 2); best != "" {
				msg += "; did you mean " + quote(best) + "?"
			}
			writeError(w, http.StatusNotFound, msg)
			return
		}
		if store == nil {
			writeError(w, http.StatusServiceUnavailable, "no counter state")
			return
		}
		now := time.Now()
		n, err := store.Get(r.Context(), ctrs[i], key, now)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "reading counter "+quote(name)+": "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, CounterValue{Counter: name, Key: key, Count: n, Window: ctrs[i].Window.String(), At: now.UTC()})
	}))
}
