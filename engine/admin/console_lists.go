package admin

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine/state"
)

// consoleListPage is how many members one console page shows.
const consoleListPage = 100

// consoleMaxMembers bounds one add or remove from the console's form;
// larger changes are imports (friendflow lists import).
const consoleMaxMembers = 1000

// listsPage shows the declared lists and their sizes.
func (c *Console) listsPage(w http.ResponseWriter, r *http.Request) {
	d := map[string]any{}
	if c.Lists == nil {
		d["Error"] = "lists are not available on this instance"
		c.render(w, http.StatusOK, "lists", "Lists", d)
		return
	}
	d["Lists"] = listsView(c.Lists, c.Rules.Current()).Lists
	c.render(w, http.StatusOK, "lists", "Lists", d)
}

// listPage shows one page of a list's members, the answer of a
// contains-check, and the add and remove forms.
func (c *Console) listPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	d := map[string]any{"Name": name}
	if c.Lists == nil {
		d["Error"] = "lists are not available on this instance"
		c.render(w, http.StatusOK, "list", "List "+name, d)
		return
	}
	if err := declared(c.Rules.Current(), name); err != nil {
		d["Error"] = err.Error()
		c.render(w, http.StatusNotFound, "list", "List "+name, d)
		return
	}
	if op := q.Get("done"); op == "add" || op == "remove" {
		d["Done"], d["Count"] = op, q.Get("n")
	}
	if q.Has("contains") {
		m := strings.TrimSpace(q.Get("contains"))
		in, err := c.Lists.Has(r.Context(), name, m)
		if err != nil {
			d["Error"] = err.Error()
		} else {
			d["Checked"], d["In"] = m, in
		}
	}
	page, err := listPage(r.Context(), c.Lists, name, q.Get("cursor"), strconv.Itoa(consoleListPage))
	if err != nil {
		d["Error"] = err.Error()
		c.render(w, statusOf(err), "list", "List "+name, d)
		return
	}
	d["Members"] = page.Members
	if n, ok := c.memberCount(name); ok {
		d["Total"] = n
	}
	if page.NextCursor != "" {
		d["Next"] = "/ui/lists/" + url.PathEscape(name) + "?cursor=" + url.QueryEscape(page.NextCursor)
	}
	c.render(w, http.StatusOK, "list", "List "+name, d)
}

func (c *Console) memberCount(name string) (int, bool) {
	for _, s := range c.Lists.Summary() {
		if s.Name == name {
			return s.Members, true
		}
	}
	return 0, false
}

// listOp adds or removes the members a form names, one a line.
func (c *Console) listOp(w http.ResponseWriter, r *http.Request) {
	name, op := r.PathValue("name"), r.PathValue("op")
	do := map[string]func(*http.Request, string, state.Members) (int, error){
		"add": func(r *http.Request, n string, m state.Members) (int, error) { return c.Lists.Add(r.Context(), n, m) },
		"remove": func(r *http.Request, n string, m state.Members) (int, error) {
			return c.Lists.Remove(r.Context(), n, m)
		},
	}[op]
	if do == nil || c.Lists == nil {
		http.NotFound(w, r)
		return
	}
	if err := declared(c.Rules.Current(), name); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, consoleMaxMembers*(state.MaxMemberBytes+2)+1024)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var members []string
	for _, line := range strings.Split(r.PostFormValue("members"), "\n") {
		if m := strings.TrimSpace(line); m != "" {
			members = append(members, m)
		}
	}
	if len(members) == 0 || len(members) > consoleMaxMembers {
		http.Error(w, "give 1 to "+strconv.Itoa(consoleMaxMembers)+" accounts, one a line (import more with friendflow lists import)", http.StatusBadRequest)
		return
	}
	n, err := do(r, name, state.MembersOf(members))
	if err != nil {
		http.Error(w, op+": "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(members) <= logMembersUpTo {
		c.Lists.LogMembers(name, op, members)
	}
	http.Redirect(w, r, "/ui/lists/"+url.PathEscape(name)+"?done="+op+"&n="+strconv.Itoa(n), http.StatusSeeOther)
}

// consoleCounterScan bounds the keys the Counters page examines in each
// counter's bucket.
const consoleCounterScan = state.DefaultTopScan

// consoleCounter is one counter on the Counters page: its top, or why it
// could not be read.
type consoleCounter struct {
	CounterTop
	Error string
}

// countersPage shows each declared counter and its busiest keys.
func (c *Console) countersPage(w http.ResponseWriter, r *http.Request) {
	d := map[string]any{"Scan": consoleCounterScan}
	set := c.Rules.Current()
	switch {
	case set == nil:
		d["Error"] = "no rules are loaded"
	case c.Counters == nil:
		d["Error"] = "counters are not available on this instance"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		var out []consoleCounter
		for _, ctr := range set.Counters() {
			top, err := counterTop(ctx, c.Counters, ctr, DefaultTop, consoleCounterScan)
			v := consoleCounter{CounterTop: top}
			if err != nil {
				v.Counter, v.On, v.Key, v.Window = ctr.Name, ctr.On, ctr.Key, ctr.Window.String()
				v.Error = "reading the counter: " + err.Error()
			}
			out = append(out, v)
		}
		d["Counters"] = out
	}
	c.render(w, http.StatusOK, "counters", "Counters", d)
}
