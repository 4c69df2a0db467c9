package record

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// openQueue opens an embedded queue recording size events in dir.
func openQueue(t testing.TB, dir string, size int) *queue.Queue {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Config{DataDir: dir, RecordEvents: size})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// newLog is a Log on a fresh store recording size events; it is closed,
// then the store stopped, when the test ends.
func newLog(t testing.TB, size int) (*Log, *queue.Queue) {
	t.Helper()
	q := openQueue(t, t.TempDir(), size)
	l := New(q, Options{Linger: time.Millisecond})
	t.Cleanup(func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	})
	return l, q
}

func flush(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.Flush(ctx)
	if ctx.Err() != nil {
		t.Fatal("the recording was not written within 30 s")
	}
}

func record(l *Log, set *rules.Set, cb *imcallback.Callback) []queue.Job {
	m, errs, jobs := handle(set, cb)
	l.Record(set, cb, m, errs, nil, jobs, nil, nil)
	return jobs
}

func list(t *testing.T, l *Log, f Filter, before uint64, limit int) ([]Event, uint64) {
	t.Helper()
	got, next, err := l.List(context.Background(), f, before, limit)
	if err != nil {
		t.Fatal(err)
	}
	return got, next
}

func get(t *testing.T, l *Log, id uint64) (Event, *rules.Set, bool) {
	t.Helper()
	e, set, ok, err := l.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e, set, ok
}

// from lists the From of events, in order.
func from(events []Event) string {
	var s []string
	for _, e := range events {
		s = append(s, e.From)
	}
	return strings.Join(s, ",")
}

func TestLogKeepsTheNewestAndCopiesWhatItKeeps(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 3) // messages: one per flush here
	for i := range 4 {
		cb := friendAdd("cb"+strconv.Itoa(i), "friend_response", "a"+strconv.Itoa(i), "b", "c"+strconv.Itoa(i), "d")
		record(l, set, cb)
		// The engine reuses the callback's memory afterwards.
		cb.Events[0].From_Account = "overwritten"
		flush(t, l)
	}
	got, next := list(t, l, Filter{}, 0, 4)
	if from(got) != "c3,a3,c2,a2" || next != got[3].ID || got[0].ID <= got[1].ID {
		t.Fatalf("first page: %s next %d", from(got), next)
	}
	got, next = list(t, l, Filter{}, next, 4)
	if from(got) != "c1,a1" || next != 0 {
		t.Fatalf("second page: %s next %d", from(got), next)
	}
	oldest := got[1].ID
	if _, _, ok := get(t, l, oldest-(1<<idBits)); ok {
		t.Fatal("the first callback's event is past --record-events, Get still finds it")
	}
	all, _ := list(t, l, Filter{}, 0, 10)
	e, gotSet, ok := get(t, l, all[1].ID)
	if !ok || gotSet != set || e.From != "a3" || e.CallbackID != "cb3" || e.RulesHash != set.Hash() {
		t.Fatalf("Get: %+v ok %v", e, ok)
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

// A job's later attempts, its dead letter and its replay are in the trace
// of the event that made it, whichever replica ran them.
func TestLogTracesJobs(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 10)
	hooks := Hooks(queue.Hooks{}, func() *Log { return l })
	jobs := record(l, set, friendAdd("cb", "friend_response", "a", "b", "c", "d"))
	if len(jobs) != 2 {
		t.Fatalf("%d jobs", len(jobs))
	}
	j := jobs[1]
	j.Attempt = 1
	hooks.JobFinished(&j, queue.OutcomeRetried, errors.New("502 from crm"), 0)
	flush(t, l)
	all, _ := list(t, l, Filter{}, 0, 10)
	second, first := all[0].ID, all[1].ID
	e, _, _ := get(t, l, second)
	if got := e.Jobs[0]; got.Outcome != JobRetrying || got.Attempt != 1 || got.LastError != "502 from crm" {
		t.Fatalf("after a retry: %+v", got)
	}
	j.Attempt = 10
	hooks.JobFinished(&j, queue.OutcomeDead, errors.New("gave up"), 0)
	j.Attempt = 0
	hooks.Replayed(&j, time.Now())
	j.Attempt = 1
	hooks.JobFinished(&j, queue.OutcomeDone, nil, 0)
	flush(t, l)
	e, _, _ = get(t, l, second)
	if got := e.Jobs[0]; got.Outcome != JobDone || got.Attempt != 1 || got.LastError != "" {
		t.Fatalf("after the replay: %+v", got)
	}
	var steps []string
	for _, u := range e.Trace {
		steps = append(steps, u.Outcome+":"+strconv.Itoa(u.Attempt)+":"+u.Error)
	}
	if got := strings.Join(steps, " "); got != "retrying:1:502 from crm dead:10:gave up replayed:0: done:1:" {
		t.Fatalf("trace %q", got)
	}
	if e, _, _ := get(t, l, first); e.Jobs[0].Outcome != JobQueued || len(e.Trace) != 0 {
		t.Fatalf("the other event's job changed: %+v %+v", e.Jobs[0], e.Trace)
	}
}

func TestLogFilters(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 100)
	record(l, set, friendAdd("c1", "friend_response", "alice", "bob"))
	record(l, set, friendAdd("c2", "friend_add", "carol", "dave"))
	record(l, set, friendAdd("c3", "1", "erin", "frank")) // int("1") > 0: fragile matches
	record(l, set, friendAdd("c4", "x", "gina", "hal"))   // int("x") fails: fragile errs
	prev := &imcallback.Callback{ID: "c5", Command: imevent.CmdPrevFriendAdd, Events: []imevent.Event{
		{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "ivan", To_Account: "judy", AddWording: "cheap loan"}}}
	m, errs, jobs := handle(set, prev)
	l.Record(set, prev, m, errs, []imcallback.ResultItem{{To_Account: "judy", ResultCode: 38001, ResultInfo: "spam"}}, jobs, nil, nil)
	skip := friendAdd("c6", "friend_add", "kim", "lee")
	m, errs, _ = handle(set, skip)
	l.Record(set, skip, m, errs, nil, nil, []queue.OnceSkip{{Event: 0, Rule: "watch", Key: "kim"}}, nil)
	flush(t, l)

	ids := func(f Filter) string {
		t.Helper()
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		got, _ := list(t, l, f, 0, 100)
		var s []string
		for _, e := range got {
			s = append(s, strings.TrimPrefix(e.CallbackID, "c"))
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "6,5,4,3,2,1"}, // callback ids
		{Filter{Command: imevent.CmdPrevFriendAdd}, "5"},
		{Filter{Account: "bob"}, "1"},
		{Filter{Account: "carol"}, "2"},
		{Filter{Rule: "greet"}, "1"},
		{Filter{Rule: "greet", Outcome: "unmatched"}, "6,5,4,3,2"},
		{Filter{Outcome: "matched"}, "5,3,1"},
		{Filter{Outcome: "unmatched"}, ""},
		{Filter{Outcome: "failed"}, "4"},
		{Filter{Outcome: "failed", Rule: "greet"}, ""},
		{Filter{Outcome: "failed", Rule: "fragile"}, "4"},
		{Filter{Outcome: "denied"}, "5"},
		{Filter{Outcome: "skipped"}, "6"},
		{Filter{Outcome: "skipped", Rule: "greet"}, ""},
		{Filter{Rule: "fragile"}, "4,3"},
		{Filter{Since: time.Now().Add(time.Hour)}, ""},
		{Filter{Until: time.Now().Add(-time.Hour)}, ""},
		{Filter{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour), Account: "erin"}, "3"},
	} {
		if got := ids(c.f); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.f, got, c.want)
		}
	}
	if err := (Filter{Outcome: "maybe"}).Validate(); err == nil || !strings.Contains(err.Error(), "unmatched") {
		t.Errorf("bad outcome: %v", err)
	}
	if got := l.MatchCounts(context.Background()); got["greet"] != 1 || got["watch"] != 5 || got["deny-loans"] != 1 {
		t.Errorf("match counts %v", got)
	}
	if n := l.Callbacks(context.Background(), time.Now().Add(-time.Minute)); n != 6 {
		t.Errorf("%d callbacks in the last minute, want 6", n)
	}
}

// Pages of a recording larger than one read (MaxEventsBatch messages,
// idsPerMsg events a message): every event once, newest first, whatever
// the page size and filter.
func TestLogPagesAcrossReads(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 1000)
	const single, packed = 300, 400 // a message each, then a few messages
	n := 0
	for range single {
		record(l, set, friendAdd("c"+strconv.Itoa(n), "friend_response", "a"+strconv.Itoa(n%7), "b"))
		n++
		flush(t, l)
	}
	l.mu.Lock() // one batch: the writer waits
	for range packed {
		m, errs, jobs := handle(set, friendAdd("c"+strconv.Itoa(n), "friend_response", "a"+strconv.Itoa(n%7), "b"))
		l.mu.Unlock()
		l.Record(set, friendAdd("c"+strconv.Itoa(n), "friend_response", "a"+strconv.Itoa(n%7), "b"), m, errs, nil, jobs, nil, nil)
		l.mu.Lock()
		n++
	}
	l.mu.Unlock()
	flush(t, l)
	if got := l.Len(context.Background()); got != n {
		t.Fatalf("Len %d, want %d", got, n)
	}
	for _, f := range []Filter{{}, {Account: "a3"}} {
		want := n
		if f.Account != "" {
			want = n / 7
		}
		seen, before, pages := 0, uint64(0), 0
		last := ^uint64(0)
		for {
			got, next := list(t, l, f, before, 37)
			for _, e := range got {
				if e.ID >= last {
					t.Fatalf("%+v: id %d after %d", f, e.ID, last)
				}
				last = e.ID
			}
			seen += len(got)
			pages++
			if next == 0 {
				break
			}
			before = next
		}
		if seen != want {
			t.Errorf("%+v: %d events in %d pages, want %d", f, seen, pages, want)
		}
	}
	var cbs []string
	err := l.Export(context.Background(), Filter{Account: "a0"}, func(e *Event) error {
		if e.Outcomes == nil {
			t.Fatalf("event %d: no outcomes derived", e.ID)
		}
		cbs = append(cbs, e.CallbackID)
		return nil
	})
	if err != nil || len(cbs) != n/7 || cbs[0] != "c0" || cbs[len(cbs)-1] != "c"+strconv.Itoa(7*(n/7-1)) {
		t.Fatalf("export: %v, %d events from %v", err, len(cbs), cbs[:min(3, len(cbs))])
	}
}

// Events written before the store stops are there after it opens again
// on the same directory, with their ids.
func TestLogSurvivesARestart(t *testing.T) {
	set := loadSet(t, testRules)
	dir := t.TempDir()
	q := openQueue(t, dir, 100)
	l := New(q, Options{})
	record(l, set, friendAdd("c1", "friend_response", "alice", "bob", "carol", "dave"))
	l.Close() // writes what it holds
	if err := q.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	q = openQueue(t, dir, 100)
	l = New(q, Options{Rules: func() *rules.Set { return set }})
	t.Cleanup(func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	})
	got, _ := list(t, l, Filter{}, 0, 10)
	if from(got) != "carol,alice" {
		t.Fatalf("after the restart: %+v", got)
	}
	// The active rules have the hash that decided: outcomes are derived.
	if _, s, _ := get(t, l, got[1].ID); s != set {
		t.Fatalf("the set that decided is not found after the restart")
	}
}

// A full buffer drops, and counts, what does not fit: Record never waits.
func TestLogDropsWhenTheBufferIsFull(t *testing.T) {
	set := loadSet(t, testRules)
	q := openQueue(t, t.TempDir(), 100)
	dropped := 0
	l := New(q, Options{Buffer: 2, Dropped: func(n int) { dropped += n }})
	t.Cleanup(func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	})
	l.mu.Lock() // one event is waiting
	l.events = 1
	l.mu.Unlock()
	record(l, set, friendAdd("c1", "friend_response", "alice", "bob", "carol", "dave"))
	if dropped != 2 {
		t.Fatalf("%d dropped, want the callback's 2 events", dropped)
	}
}

func TestExportRedactsSecretsAndDerivesOutcomes(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 10)
	record(l, set, friendAdd("c1", "friend_response", "alice", "bob"))
	record(l, set, friendAdd("c2", "x", "gina", "hal"))
	flush(t, l)
	var out []Event
	if err := l.Export(context.Background(), Filter{}, func(e *Event) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].CallbackID != "c1" || out[1].ID <= out[0].ID {
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
	l, _ := newLog(t, 2)
	cb := friendAdd("c1", "friend_response", strings.Repeat("é", 2000), "bob")
	record(l, set, cb)
	flush(t, l)
	all, _ := list(t, l, Filter{}, 0, 1)
	e, _, _ := get(t, l, all[0].ID)
	if !e.Truncated || len(e.Data) > 1024 {
		t.Fatalf("truncated %v, %d bytes", e.Truncated, len(e.Data))
	}
	ev, err := e.Decode()
	if err != nil || ev.From_Account != strings.Repeat("é", clipBytes[0]/2) || ev.To_Account != "bob" {
		t.Fatalf("decoded %q %q %v", ev.From_Account, ev.To_Account, err)
	}
}

// Following sees events stored after it started, filtered, from every
// writer of the stream.
func TestLogFollows(t *testing.T) {
	set := loadSet(t, testRules)
	l, _ := newLog(t, 10)
	record(l, set, friendAdd("old", "friend_response", "alice", "bob"))
	flush(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan Event, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, Filter{Account: "erin"}, 0, func(e *Event) error { got <- *e; return nil })
	}()
	// The follower starts after the first read of the stream: keep
	// recording until it has seen one.
	for i := 0; ; i++ {
		record(l, set, friendAdd("n"+strconv.Itoa(i), "friend_response", "carol", "dave", "erin", "frank"))
		select {
		case e := <-got:
			if e.From != "erin" {
				t.Fatalf("followed %+v", e)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("nothing followed within 30 s")
		}
	}
}

// What the writer stores is packed (codec.go), and reads back whole.
func TestLogStoresPacked(t *testing.T) {
	set := loadSet(t, testRules)
	l, q := newLog(t, 100)
	for i := range 20 {
		// A long account, twice in a line (from, and the event's
		// From_Account): each line packs shorter, however the writer
		// splits them into messages.
		record(l, set, friendAdd("cb"+strconv.Itoa(i), "friend_response", strings.Repeat("alice", 12), "bob"))
	}
	flush(t, l)
	packed := 0
	_, err := q.ReadEvents(context.Background(), 1, 1<<20, 100, func(m queue.RecordedMsg) bool {
		if len(m.Data) > 0 && m.Data[0] == packedMark {
			packed++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := list(t, l, Filter{}, 0, 100)
	if packed == 0 || len(got) != 20 {
		t.Fatalf("%d packed messages, %d events listed", packed, len(got))
	}
}

// Events are written as soon as a whole message of them waits, without
// waiting out the linger (the buffer stays about a message's size), and
// only whole messages: the rest waits for the linger, or Close.
func TestLogWritesWholeMessagesEarly(t *testing.T) {
	set := loadSet(t, testRules)
	q := openQueue(t, t.TempDir(), 1000)
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	l := New(q, Options{Linger: time.Hour})
	defer l.Close()
	record(l, set, friendAdd("first", "friend_response", "a", "b"))
	flush(t, l) // the first write does not wait: nothing was written before
	events := func() uint64 {
		_, _, n, err := q.EventBounds(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := events(); n != 1 {
		t.Fatalf("%d events stored after the first flush, want 1", n)
	}
	// 129 callbacks of 2 events: one whole message (idsPerMsg) and 2 more.
	for i := range 129 {
		record(l, set, friendAdd("cb"+strconv.Itoa(i), "friend_response", "a", "b", "c", "d"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for events() < 1+idsPerMsg {
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored within 30 s, want %d: a whole message waited for the hour's linger", events(), 1+idsPerMsg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := events(); n != 1+idsPerMsg {
		t.Fatalf("%d events stored, want %d: the writer took more than whole messages before the linger", n, 1+idsPerMsg)
	}
	l.Close()
	if n := events(); n != 1+2*129 {
		t.Fatalf("%d events stored after Close, want %d", n, 1+2*129)
	}
}
