package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// sourceLine is one line of a rule file, with the problems at it.
type sourceLine struct {
	N        int
	Text     string
	Problems []string
}

type fileView struct {
	rules.FileInfo
	Lines []sourceLine
	Error string
}

type ruleView struct {
	rules.RuleInfo
	Matches int
	Tests   []rules.TestResult
}

func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request) {
	set := c.Rules.Current()
	// The page is GET /rules's answer, each file with its source and each
	// rule with its tests and matches.
	d := struct {
		RulesView
		Sources   []fileView
		Rows      []ruleView
		Recording bool
	}{RulesView: rulesView(set, c.Rules.Status()), Recording: c.Events != nil}
	if set == nil {
		c.render(w, http.StatusOK, "rules", "Rules", d)
		return
	}
	// Problems by file and line: the set's warnings, and the last failed
	// reload's errors (the files on disk may be that broken version).
	at := map[string]map[int][]string{}
	add := func(file string, line int, msg string) {
		if at[file] == nil {
			at[file] = map[int][]string{}
		}
		at[file][line] = append(at[file][line], msg)
	}
	for _, p := range set.Warnings() {
		add(p.File, p.Line, "warning "+p.Code+": "+p.Msg)
	}
	for _, line := range strings.Split(d.Status.LastError, "\n") {
		if file, n, msg, ok := splitProblem(line); ok {
			add(file, n, msg)
		}
	}
	secrets := secretKeys(c.Registry)
	for _, f := range d.Files {
		fv := fileView{FileInfo: f}
		lines, err := readSource(f.Path)
		if err != nil {
			fv.Error = err.Error()
		}
		lines = redactSource(lines, secrets)
		for i, l := range lines {
			fv.Lines = append(fv.Lines, sourceLine{N: i + 1, Text: l, Problems: at[f.Path][i+1]})
		}
		d.Sources = append(d.Sources, fv)
	}
	counts := c.Events.MatchCounts(r.Context())
	tests := set.RunTests()
	for _, ri := range d.Rules {
		rv := ruleView{RuleInfo: ri, Matches: counts[ri.Name]}
		for _, t := range tests {
			if t.Rule == ri.Name {
				rv.Tests = append(rv.Tests, t)
			}
		}
		d.Rows = append(d.Rows, rv)
	}
	c.render(w, http.StatusOK, "rules", "Rules", d)
}

// splitProblem parses "file:line:col: message".
func splitProblem(s string) (file string, line int, msg string, ok bool) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 4 {
		return "", 0, "", false
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return "", 0, "", false
	}
	return parts[0], n, strings.TrimSpace(parts[3]), true
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request) {
	// The page is GET /events's answer, with the filters' choices.
	d := struct {
		EventList
		Recording bool
		Query     url.Values
		Error     string
		Older     string
		Live      string // the stream the page follows
		Commands  []string
		Outcomes  []string
		Rules     []string
	}{EventList: EventList{Capacity: c.Events.Size()}, Recording: c.Events != nil,
		Query: r.URL.Query(), Commands: imevent.Commands, Outcomes: record.Outcomes}
	if set := c.Rules.Current(); set != nil {
		for _, ri := range set.Rules() {
			d.Rules = append(d.Rules, ri.Name)
		}
	}
	f, cursor, limit, err := eventQuery(r)
	status := http.StatusOK
	if err == nil {
		d.EventList, err = listEvents(r.Context(), c.Events, f, cursor, limit)
		status = http.StatusServiceUnavailable
	}
	if err != nil {
		d.Error = err.Error()
		if status == http.StatusOK {
			status = http.StatusBadRequest
		}
	} else {
		status = http.StatusOK
		q := r.URL.Query()
		q.Del("before")
		q.Del("cursor")
		d.Live = "/ui/events/live?" + q.Encode()
		if d.Next != 0 {
			q.Set("cursor", strconv.FormatUint(d.Next, 10))
			d.Older = "/ui/events?" + q.Encode()
		}
	}
	c.render(w, status, "events", "Events", d)
}

func (c *Console) eventPage(w http.ResponseWriter, r *http.Request) {
	tr, status, err := trace(r.Context(), c.Events, c.Rules, r.PathValue("id"))
	if err != nil {
		c.render(w, status, "event", "Event", map[string]any{"Error": err.Error()})
		return
	}
	// The event's fields in the field table's order, as JSON values.
	var fields map[string]any
	_ = json.Unmarshal(tr.Event.Data, &fields)
	type kv struct{ Name, Value string }
	var kvs []kv
	for _, f := range imevent.Fields {
		switch v := fields[f.Name].(type) {
		case string:
			if v != "" {
				kvs = append(kvs, kv{f.Name, v})
			}
		case float64:
			kvs = append(kvs, kv{f.Name, strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	c.render(w, http.StatusOK, "event", "Event "+strconv.FormatUint(tr.Event.ID, 10), map[string]any{"Trace": tr, "Fields": kvs})
}

// ruleFilesOf reads the files of the active set for "Try a change".
func (c *Console) ruleFilesOf() []RuleFile {
	set := c.Rules.Current()
	if set == nil {
		return nil
	}
	var out []RuleFile
	secrets := secretKeys(c.Registry)
	for _, f := range set.Files() {
		lines, err := readSource(f.Path)
		if err != nil {
			continue
		}
		// Redacted values render redacted in a backtest too, so hiding
		// them changes no diff.
		lines = redactSource(lines, secrets)
		out = append(out, RuleFile{Name: baseName(f.Path), Data: strings.Join(lines, "\n") + "\n"})
	}
	return out
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func (c *Console) tryPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "try", "Try a change", map[string]any{"Files": append(c.ruleFilesOf(), RuleFile{}), "Recorded": c.Events.Len(r.Context())})
}

// try backtests the files of the form: name0/data0, name1/data1, …; an
// empty name with empty data is an unused slot.
func (c *Console) try(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRulesBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form is too large or malformed", http.StatusBadRequest)
		return
	}
	var files []RuleFile
	for i := 0; ; i++ {
		k := strconv.Itoa(i)
		if !r.PostForm.Has("name" + k) {
			break
		}
		f := RuleFile{Name: strings.TrimSpace(r.PostForm.Get("name" + k)), Data: strings.ReplaceAll(r.PostForm.Get("data"+k), "\r\n", "\n")}
		if f.Name == "" && strings.TrimSpace(f.Data) == "" {
			continue
		}
		files = append(files, f)
	}
	res := tryRulesWith(r.Context(), files, c.Registry, c.Events, listsOf(c.Rules))
	c.render(w, http.StatusOK, "try", "Try a change", map[string]any{"Files": append(files, RuleFile{}), "Result": res, "Recorded": c.Events.Len(r.Context())})
}

// secretKeys are the names of the registered kinds' secret parameters
// and secret object fields.
func secretKeys(reg *actions.Registry) map[string]bool {
	keys := map[string]bool{}
	var walk func([]actions.Param)
	walk = func(ps []actions.Param) {
		for _, p := range ps {
			if p.Secret {
				keys[p.Name] = true
			}
			walk(p.Fields)
		}
	}
	if reg != nil {
		for _, k := range reg.Kinds() {
			walk(k.Spec().Params)
		}
	}
	return keys
}

// eventsLive is the stream the Events page follows (static/events.js):
// GET /events/stream behind the console's sign-in, which EventSource
// passes as the cookie it cannot put in a header.
func (c *Console) eventsLive(w http.ResponseWriter, r *http.Request) {
	streamEvents(w, r, c.Events)
}
