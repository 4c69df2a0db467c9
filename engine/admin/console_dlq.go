package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/engine/queue"
)

// consoleDeadPage is how many dead letters one console page shows.
const consoleDeadPage = 50

// deadLetterView is a dead letter as the console shows it: parameters
// redacted, the event as JSON.
type deadLetterView struct {
	DeadLetterView
	Reason string
	Params string
	Event  string
}

// filterValues is f as query parameters, for links and forms that keep it.
func filterValues(f DeadFilterJSON) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"rule": f.Rule, "kind": f.Kind, "error": f.Error, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// dlqPage shows one page of dead letters, newest first, filtered as the
// query says, with a link to the next page: never the whole store.
func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := deadFilterQuery(q)
	d := map[string]any{"Filter": f, "Filtered": f != DeadFilterJSON{}, "Hidden": filterValues(f)}
	for _, k := range []string{"replayed", "dropped"} {
		if v := q.Get(k); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				d["Done"], d["Count"] = k, n
			}
		}
	}
	dq, err := deadQuery(q, time.Now())
	if err != nil {
		d["Error"] = err.Error()
		c.render(w, http.StatusBadRequest, "dlq", "Dead letters", d)
		return
	}
	dq.Newest = true
	if dq.Limit == 0 {
		dq.Limit = consoleDeadPage
	}
	page, err := c.DLQ.ListDead(r.Context(), dq)
	if err != nil {
		d["Error"] = err.Error()
		status := http.StatusServiceUnavailable
		if errors.Is(err, queue.ErrBadCursor) {
			status = http.StatusBadRequest
		}
		c.render(w, status, "dlq", "Dead letters", d)
		return
	}
	c.fillDeadPage(d, f, dq.Limit, page)
	c.render(w, http.StatusOK, "dlq", "Dead letters", d)
}

func (c *Console) fillDeadPage(d map[string]any, f DeadFilterJSON, limit int, page queue.DeadPage) {
	views := make([]deadLetterView, 0, len(page.DeadLetters))
	for _, dl := range page.DeadLetters {
		v := deadLetterView{DeadLetterView: view(dl), Reason: dl.Reason}
		params := map[string]any{"": "<unknown action kind: parameters hidden>"}
		if k, ok := c.Registry.Lookup(dl.Action); ok {
			params = k.Spec().Redact(dl.Job.Params)
		}
		pj, _ := json.MarshalIndent(params, "", "  ")
		v.Params, v.Event = string(pj), string(dl.Job.Event)
		views = append(views, v)
	}
	d["DeadLetters"], d["Total"] = views, page.Total
	if page.Next != "" {
		v := filterValues(f)
		v.Set("cursor", page.Next)
		if limit != consoleDeadPage {
			v.Set("limit", strconv.Itoa(limit))
		}
		d["Next"] = "/ui/dlq?" + v.Encode()
	}
}

// dlqOp replays or drops the dead letters a form names: ids, or every one
// the filter picks (all when it is empty). A bulk drop asks first: the
// form comes back with how many it would drop and a confirming button.
func (c *Console) dlqOp(w http.ResponseWriter, r *http.Request) {
	var byID func(context.Context, []string) (int, error)
	var where func(context.Context, queue.DeadSweep) (queue.SweepResult, error)
	op := r.PathValue("op")
	var past string
	switch op {
	case "replay":
		byID, where, past = c.DLQ.Replay, c.DLQ.ReplayWhere, "replayed"
	case "drop":
		byID, where, past = c.DLQ.Drop, c.DLQ.DropWhere, "dropped"
	default:
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var n int
	var err error
	fj := deadFilterQuery(r.PostForm)
	switch {
	case len(r.PostForm["id"]) > 0:
		n, err = byID(r.Context(), r.PostForm["id"])
	case r.PostFormValue("all") == "1":
		f, ferr := fj.filter(time.Now())
		if ferr != nil {
			http.Error(w, ferr.Error(), http.StatusBadRequest)
			return
		}
		s := queue.DeadSweep{DeadFilter: f}
		if op == "drop" && r.PostFormValue("confirm") != "1" {
			c.confirmDrop(w, r, fj, s)
			return
		}
		var res queue.SweepResult
		res, err = where(r.Context(), s)
		n = res.N
	default:
		http.Error(w, "no dead letter chosen", http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, op+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	v := filterValues(fj)
	v.Set(past, strconv.Itoa(n))
	http.Redirect(w, r, "/ui/dlq?"+v.Encode(), http.StatusSeeOther)
}

// confirmDrop shows how many dead letters a bulk drop would remove and
// asks again.
func (c *Console) confirmDrop(w http.ResponseWriter, r *http.Request, fj DeadFilterJSON, s queue.DeadSweep) {
	s.DryRun = true
	res, err := c.DLQ.DropWhere(r.Context(), s)
	if err != nil {
		http.Error(w, "drop: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d := map[string]any{"Filter": fj, "Filtered": fj != DeadFilterJSON{}, "Hidden": filterValues(fj), "Confirm": res.N}
	c.render(w, http.StatusOK, "dlq", "Dead letters", d)
}
