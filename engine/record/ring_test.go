package record

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

const testRules = `rules:
  - name: greet
    when: ClientCmd == "friend_response"
    actions:
      - webhook:
          url: https://crm.example/hook
          secret: hunter2-webhook-secret
          body: { who: "${ From_Account }" }
  - name: watch
    shadow: true
    actions:
      - log: { message: "saw ${ To_Account }" }
  - name: fragile
    when: ClientCmd in ["1", "x"] && int(ClientCmd) > 0
    actions:
      - log: { message: never }
  - name: deny-loans
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan"
    actions:
      - deny: { code: 38001, reason: spam }
`

func loadSet(t testing.TB, src string) *rules.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var reg actions.Registry
	for _, k := range []actions.Kind{&actions.Log{}, &actions.Webhook{}, &actions.Deny{}} {
		if err := reg.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// handle does to cb what the engine does before it calls Record: match
// every event, and make one job per queued action, named as the engine
// names them.
func handle(set *rules.Set, cb *imcallback.Callback) ([][]rules.Match, [][]rules.RuleError, []queue.Job) {
	matches := make([][]rules.Match, len(cb.Events))
	var (
		jobs []queue.Job
		errs [][]rules.RuleError
	)
	for i := range cb.Events {
		var es []rules.RuleError
		matches[i], es = set.Match(&cb.Events[i])
		if es != nil {
			if errs == nil {
				errs = make([][]rules.RuleError, len(cb.Events))
			}
			errs[i] = es
		}
		for mi, m := range matches[i] {
			for ai, a := range m.Actions {
				if a.Sync {
					continue
				}
				jobs = append(jobs, queue.Job{CallbackID: cb.ID, Job: actions.Job{
					ID: actions.JobID(cb.ID, i, mi, ai), Rule: m.Rule, Action: a.Kind, Params: a.Params}})
			}
		}
	}
	return matches, errs, jobs
}

func friendAdd(id, clientCmd string, pairs ...string) *imcallback.Callback {
	cb := &imcallback.Callback{ID: id, Command: imevent.CmdFriendAdd}
	for i := 0; i+1 < len(pairs); i += 2 {
		cb.Events = append(cb.Events, imevent.Event{CallbackCommand: cb.Command, ClientCmd: clientCmd,
			From_Account: pairs[i], To_Account: pairs[i+1], PairIndex: i / 2, PairCount: len(pairs) / 2})
	}
	return cb
}

func record(r *Ring, set *rules.Set, cb *imcallback.Callback) []queue.Job {
	m, errs, jobs := handle(set, cb)
	r.Record(set, cb, m, errs, nil, jobs, nil, nil)
	return jobs
}

func TestRingKeepsTheNewestAndCopiesWhatItKeeps(t *testing.T) {
	set := loadSet(t, testRules)
	r := New(3)
	for i := range 4 {
		cb := friendAdd("cb"+strconv.Itoa(i), "friend_response", "a"+strconv.Itoa(i), "b", "c", "d")
		record(r, set, cb)
		// The engine reuses the callback's memory afterwards.
		cb.Events[0].From_Account = "overwritten"
	}
	if r.Len() != 3 {
		t.Fatalf("Len %d, want 3", r.Len())
	}
	got, next := r.List(Filter{}, 0, 2)
	if len(got) != 2 || got[0].ID != 8 || got[1].ID != 7 || next != 7 {
		t.Fatalf("first page: %+v next %d", got, next)
	}
	got, next = r.List(Filter{}, next, 2)
	if len(got) != 1 || got[0].ID != 6 || next != 0 {
		t.Fatalf("second page: %+v next %d", got, next)
	}
	if _, _, ok := r.Get(5); ok {
		t.Fatal("event 5 was evicted, Get still finds it")
	}
	e, gotSet, ok := r.Get(7)
	if !ok || gotSet != set || e.From != "a3" || e.CallbackID != "cb3" || e.RulesHash != set.Hash() {
		t.Fatalf("Get(7): %+v ok %v", e, ok)
	}
	ev, err := e.Decode()
	if err != nil || ev.From_Account != "a3" || ev.ClientCmd != "friend_response" {
		t.Fatalf("decoded %+v, %v", ev, err)
	}
	if strings.Join(e.Matched, ",") != "greet,watch" || strings.Join(e.Shadow, ",") != "watch" {
		t.Fatalf("matched %v shadow %v", e.Matched, e.Shadow)
	}
	if len(e.Jobs) != 1 || e.Jobs[0].Rule != "greet" || e.Jobs[0].Outcome != JobQueued || e.Jobs[0].ID != "cb3-0-0-0" {
		t.Fatalf("jobs %+v", e.Jobs)
	}
}

func TestRingFollowsJobOutcomes(t *testing.T) {
	set := loadSet(t, testRules)
	r := New(10)
	hooks := r.Hooks(queue.Hooks{})
	jobs := record(r, set, friendAdd("cb", "friend_response", "a", "b", "c", "d"))
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[1]
	j.Attempt = 1
	hooks.JobFinished(&j, queue.OutcomeRetried, errors.New("502 from crm"), 0)
	e, _, _ := r.Get(2)
	if got := e.Jobs[0]; got.Outcome != JobRetrying || got.Attempt != 1 || got.LastError != "502 from crm" {
		t.Fatalf("after a retry: %+v", got)
	}
	j.Attempt = 10
	hooks.JobFinished(&j, queue.OutcomeDead, errors.New("gave up"), 0)
	e, _, _ = r.Get(2)
	if got := e.Jobs[0]; got.Outcome != JobDead || got.Attempt != 10 {
		t.Fatalf("after dead: %+v", got)
	}
	if e, _, _ := r.Get(1); e.Jobs[0].Outcome != JobQueued {
		t.Fatalf("the other event's job changed: %+v", e.Jobs[0])
	}
	// A replayed dead letter that succeeds.
	j.Attempt = 1
	hooks.JobFinished(&j, queue.OutcomeDone, nil, 0)
	if e, _, _ := r.Get(2); e.Jobs[0].Outcome != JobDone || e.Jobs[0].LastError != "" {
		t.Fatalf("after replay: %+v", e.Jobs[0])
	}
	if got, _ := r.List(Filter{Outcome: JobDone, Rule: "greet"}, 0, 10); len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("filter done: %+v", got)
	}
}

func TestRingFilters(t *testing.T) {
	set := loadSet(t, testRules)
	r := New(100)
	record(r, set, friendAdd("c1", "friend_response", "alice", "bob"))
	record(r, set, friendAdd("c2", "friend_add", "carol", "dave"))
	record(r, set, friendAdd("c3", "1", "erin", "frank")) // int("1") > 0: fragile matches
	record(r, set, friendAdd("c4", "x", "gina", "hal"))   // int("x") fails: fragile errs
	prev := &imcallback.Callback{ID: "c5", Command: imevent.CmdPrevFriendAdd, Events: []imevent.Event{
		{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "ivan", To_Account: "judy", AddWording: "cheap loan"}}}
	m, errs, jobs := handle(set, prev)
	r.Record(set, prev, m, errs, []imcallback.ResultItem{{To_Account: "judy", ResultCode: 38001, ResultInfo: "spam"}}, jobs, nil, nil)

	ids := func(f Filter) string {
		t.Helper()
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		got, _ := r.List(f, 0, 100)
		var s []string
		for _, e := range got {
			s = append(s, strconv.FormatUint(e.ID, 10))
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "5,4,3,2,1"},
		{Filter{Command: imevent.CmdPrevFriendAdd}, "5"},
		{Filter{Account: "bob"}, "1"},
		{Filter{Account: "carol"}, "2"},
		{Filter{Rule: "greet"}, "1"},
		{Filter{Rule: "greet", Outcome: "not_matched"}, "5,4,3,2"},
		{Filter{Outcome: "matched"}, "5,3,1"},
		{Filter{Outcome: "not_matched"}, ""},
		{Filter{Outcome: "shadow", Rule: "watch"}, "4,3,2,1"},
		{Filter{Outcome: "error"}, "4"},
		{Filter{Outcome: "error", Rule: "greet"}, ""},
		{Filter{Outcome: "denied"}, "5"},
		{Filter{Outcome: JobQueued, Rule: "fragile"}, "3"},
	} {
		if got := ids(c.f); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.f, got, c.want)
		}
	}
	if err := (Filter{Outcome: "maybe"}).Validate(); err == nil || !strings.Contains(err.Error(), "not_matched") {
		t.Errorf("bad outcome: %v", err)
	}
	if got := r.MatchCounts(); got["greet"] != 1 || got["watch"] != 4 || got["deny-loans"] != 1 {
		t.Errorf("match counts %v", got)
	}
}

func TestExportRedactsSecretsAndDerivesOutcomes(t *testing.T) {
	set := loadSet(t, testRules)
	r := New(10)
	record(r, set, friendAdd("c1", "friend_response", "alice", "bob"))
	record(r, set, friendAdd("c2", "x", "gina", "hal"))
	out := r.Export()
	if len(out) != 2 || out[0].ID != 1 {
		t.Fatalf("export %+v", out)
	}
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), "hunter2") {
		t.Fatalf("export holds a secret: %s", raw)
	}
	o := out[0].Outcomes
	if len(o) != 2 || o[0].Rule != "greet" || o[0].Status != rules.StatusMatched || o[0].Actions[0].Params["secret"] != "<redacted>" || o[1].Status != rules.StatusShadow {
		t.Fatalf("outcomes %+v", o)
	}
	if o := out[1].Outcomes; len(o) != 2 || o[1].Rule != "fragile" || o[1].Status != rules.StatusError || o[1].Error == "" {
		t.Fatalf("outcomes of the failing event %+v", o)
	}
}

func TestHugeEventsAreClipped(t *testing.T) {
	set := loadSet(t, testRules)
	r := New(2)
	cb := friendAdd("c1", "friend_response", strings.Repeat("é", 2000), "bob")
	record(r, set, cb)
	e, _, _ := r.Get(1)
	if !e.Truncated || len(e.Data) > 1024 {
		t.Fatalf("truncated %v, %d bytes", e.Truncated, len(e.Data))
	}
	ev, err := e.Decode()
	if err != nil || ev.From_Account != strings.Repeat("é", clipBytes[0]/2) || ev.To_Account != "bob" {
		t.Fatalf("decoded %q %q %v", ev.From_Account, ev.To_Account, err)
	}
}

// largestEvent is the biggest event the ring can hold: every string field
// just under the clip limit of the whole event.
func largestEvent(i int) *imcallback.Callback {
	long := strings.Repeat("x", 110) // its JSON is just under maxEventJSON: the most kept
	ev := imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, ClientIP: long, OptPlatform: long,
		From_Account: long + strconv.Itoa(i), To_Account: long, Initiator_Account: long, ClientCmd: long, Admin_Account: long,
		Requester_Account: long, Remark: long, GroupName: long, AddSource: long, AddWording: long, AddType: long,
		TagName: long, ResponseAction: long}
	return &imcallback.Callback{ID: imcallback.NewID(), Command: ev.CallbackCommand, Events: []imevent.Event{ev}}
}

// typicalEvent is an accepted friend request between two short UserIDs.
func typicalEvent(i int) *imcallback.Callback {
	cb := friendAdd(imcallback.NewID(), "friend_response", "user_"+strconv.Itoa(i), "user_"+strconv.Itoa(i+1))
	cb.Events[0].ClientIP, cb.Events[0].OptPlatform, cb.Events[0].EventTime = "10.1.2.3", "Android", 1700000000000
	return cb
}

// TestWorstCaseMemory fills a ring of DefaultSize with the largest events
// it keeps, each matched by a rule and with a job, and bounds what it
// holds; it reports typical events too.
func TestWorstCaseMemory(t *testing.T) {
	ev := &largestEvent(0).Events[0]
	if b, clipped := eventJSON(imevent.AppendEventJSON(nil, ev)); clipped || len(b) < maxEventJSON-64 {
		t.Fatalf("not the largest event kept: clipped %v, %d bytes", clipped, len(b))
	}
	held := fill(t, largestEvent)
	t.Logf("%d events of the largest kind hold %.1f MiB (%d bytes each)", DefaultSize, float64(held)/(1<<20), held/DefaultSize)
	if held > 40<<20 {
		t.Fatalf("%d MiB for %d events", held>>20, DefaultSize)
	}
	typical := fill(t, typicalEvent)
	t.Logf("%d typical events hold %.1f MiB (%d bytes each)", DefaultSize, float64(typical)/(1<<20), typical/DefaultSize)
}

func fill(t *testing.T, event func(int) *imcallback.Callback) uint64 {
	set := loadSet(t, testRules)
	matches := [][]rules.Match{{{Rule: "deny-loans"}, {Rule: "watch", Shadow: true}}}
	decisions := []imcallback.ResultItem{{ResultCode: 38001, ResultInfo: "spam"}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(DefaultSize)
	for i := range 2 * DefaultSize {
		cb := event(i)
		jobs := []queue.Job{{CallbackID: cb.ID, Job: actions.Job{ID: cb.ID + "-0-0-0", Rule: "deny-loans", Action: "webhook"}}}
		r.Record(set, cb, matches, nil, decisions, jobs, nil, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if e, _, _ := r.Get(2 * DefaultSize); e.Truncated {
		t.Fatal("a kept event was clipped")
	}
	runtime.KeepAlive(r)
	return after.HeapAlloc - before.HeapAlloc
}
