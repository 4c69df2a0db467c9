package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// recordKind is a test action that records every job it runs.
type recordKind struct {
	mu   sync.Mutex
	jobs []actions.Job
}

func (k *recordKind) Spec() actions.Spec {
	return actions.Spec{Name: "record", Params: []actions.Param{{Name: "note", Type: actions.String}}}
}

func (k *recordKind) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.jobs = append(k.jobs, job)
	return nil
}

func (k *recordKind) snapshot() []actions.Job {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]actions.Job(nil), k.jobs...)
}

func (k *recordKind) wait(t *testing.T, n int) []actions.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if js := k.snapshot(); len(js) >= n {
			return js
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("want %d jobs run, got %d", n, len(k.snapshot()))
	return nil
}

type harness struct {
	eng  *Engine
	q    *queue.Queue
	rec  *recordKind
	set  *rules.Set
	logs logFile
}

// newHarness loads the rules in yaml into a real rule set and runs them on
// a real embedded queue. Each opt adjusts the engine's configuration before
// the engine is built.
func newHarness(t *testing.T, yaml string, run bool, opts ...func(*Engine)) *harness {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logs.Close() })
	h := &harness{rec: &recordKind{}, logs: logFile(logs.Name())}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var reg actions.Registry
	for _, k := range []actions.Kind{h.rec, &actions.Log{Logger: log, Accounts: imevent.AccountFields()}, &actions.Deny{}} {
		if err := reg.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		t.Fatal(err)
	}
	h.set = set
	metrics := NewMetrics("test", "test")
	metrics.RulesLoaded(set)
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(dir, "data"), Registry: &reg, Logger: log, Hooks: metrics.QueueHooks()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	h.q = q
	h.eng = &Engine{
		Rules:           func() *rules.Set { return h.set },
		Queue:           q,
		Logger:          log,
		Metrics:         metrics,
		DecisionTimeout: 500 * time.Millisecond,
	}
	for _, opt := range opts {
		opt(h.eng)
	}
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = q.Run(ctx) }()
	}
	return h
}

// drained waits until the queue holds no unfinished job.
func (h *harness) drained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := h.q.Stats(context.Background())
		if err == nil && st.Jobs == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the queue never drained")
}

func (h *harness) callback(t *testing.T, cmd, sample string) *imcallback.Callback {
	t.Helper()
	cb := newCB(cmd)
	cb.ID = imcallback.NewID()
	if err := imcallback.Decode(callbacks.Must(sample), cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

const welcomeRules = `
rules:
  - name: welcome
    when: ClientCmd in ["friend_response", "FriendResponse"]
    once:
      key: 'From_Account < To_Account ? From_Account + "|" + To_Account : To_Account + "|" + From_Account'
      for: 1h
    actions:
      - record: { note: "welcome ${ To_Account } from ${ From_Account }" }
  - name: audit-every-add
    actions:
      - record: { note: "added ${ To_Account }" }
  - name: shadow-candidate
    shadow: true
    actions:
      - record: { note: "never runs" }
`

func TestEngineQueuesMatchedActionsAndRunsThem(t *testing.T) {
	h := newHarness(t, welcomeRules, true)
	cb := h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json")
	reply, err := h.eng.Handle(context.Background(), cb)
	if err != nil || reply.ActionStatus != "OK" || reply.ResultItem != nil {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	// Two pairs: the welcome once (the pair's second direction is the same
	// friendship), the audit twice, the shadow rule never.
	h.rec.wait(t, 3)
	h.drained(t) // a fourth job, if wrongly queued, has run by now
	jobs := h.rec.snapshot()
	if len(jobs) != 3 {
		t.Fatalf("ran %d jobs, want 3: %+v", len(jobs), jobs)
	}
	notes := map[string]int{}
	for _, j := range jobs {
		notes[j.Params["note"].(string)]++
		if !strings.HasPrefix(j.ID, cb.ID+"-") {
			t.Errorf("job id %q not derived from callback id %q", j.ID, cb.ID)
		}
		var ev imevent.Event
		if err := json.Unmarshal(j.Event, &ev); err != nil || ev.CallbackCommand != imevent.CmdFriendAdd {
			t.Errorf("job event %s: %v", j.Event, err)
		}
	}
	if notes["welcome bob from alice"] != 1 || notes["added bob"] != 1 || notes["added alice"] != 1 {
		t.Fatalf("notes %v", notes)
	}
	if !strings.Contains(h.logs.String(), `"rule":"shadow-candidate"`) {
		t.Error("shadow match not logged")
	}

	// The same friendship again within the once window: no second welcome.
	cb2 := h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json")
	if _, err := h.eng.Handle(context.Background(), cb2); err != nil {
		t.Fatal(err)
	}
	jobs = h.rec.wait(t, 5)
	for _, j := range jobs[3:] {
		if strings.HasPrefix(j.Params["note"].(string), "welcome") {
			t.Fatalf("welcomed twice: %+v", j)
		}
	}
}

// failingQueue is the real queue with Enqueue made to fail, to check what a
// failed store leaves behind.
type failingQueue struct{ *queue.Queue }

func (failingQueue) Enqueue(context.Context, string, []queue.Job) error {
	return errors.New("stream unavailable")
}

// failingStore is a newHarness option: the engine stores its jobs through
// a failingQueue.
func failingStore(e *Engine) { e.Queue = failingQueue{e.Queue.(*queue.Queue)} }

func TestEngineFailedEnqueueReleasesOnceKeys(t *testing.T) {
	h := newHarness(t, welcomeRules, false, failingStore)
	cb := h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json")
	if _, err := h.eng.Handle(context.Background(), cb); err == nil || !strings.Contains(err.Error(), "stream unavailable") {
		t.Fatalf("err %v", err)
	}
	// Tencent (or an operator) retries the callback: it must be welcomed,
	// not taken for a duplicate of the lost one.
	first, err := h.q.Once(context.Background(), "welcome\x00alice|bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !first {
		t.Fatal("the once key of a callback whose jobs were not stored was kept")
	}
}

func TestEngineReceiverFailsWhenStoreFails(t *testing.T) {
	h := newHarness(t, welcomeRules, false, failingStore)
	rc := &imcallback.Receiver{SdkAppid: testAppID, Handler: h.eng, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"?SdkAppid=1400000000&CallbackCommand=Sns.CallbackFriendAdd", "application/json", strings.NewReader(string(callbacks.Must("friend_add.json"))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r imcallback.Reply
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusServiceUnavailable || r.ActionStatus != "FAIL" || r.ErrorCode != 1 || strings.Contains(r.ErrorInfo, "stream unavailable") {
		t.Fatalf("got %d %+v", resp.StatusCode, r)
	}
	// Readiness says what the callback met, until a callback is stored.
	if err := h.eng.Ready(); err == nil || !strings.Contains(err.Error(), "stream unavailable") {
		t.Fatalf("Ready after a failed store: %v", err)
	}
}

const denyRules = `
rules:
  - name: allow-restapi
    on: [Sns.CallbackPrevFriendAdd]
    when: OptPlatform == "RESTAPI"
    actions:
      - log: { message: "admin add allowed" }
  - name: deny-spam
    on: [Sns.CallbackPrevFriendAdd]
    when: OptPlatform != "RESTAPI" && AddWording matches "(?i)casino|loan"
    actions:
      - deny: { code: 38001, reason: "spam" }
      - record: { note: "spam from ${ From_Account } to ${ To_Account }" }
  - name: deny-flagged-shadow
    on: [Sns.CallbackPrevFriendAdd]
    shadow: true
    when: To_Account == "id1"
    actions:
      - deny: { code: 38002, reason: "shadow only" }
  - name: second-denier
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan"
    actions:
      - deny: { code: 38999, reason: "never wins: deny-spam comes first" }
`

func prevCallback(t *testing.T, wordings ...string) *imcallback.Callback {
	t.Helper()
	type item struct {
		To_Account string `json:"To_Account"`
		AddWording string `json:"AddWording"`
	}
	body := struct {
		CallbackCommand   string `json:"CallbackCommand"`
		Requester_Account string `json:"Requester_Account"`
		From_Account      string `json:"From_Account"`
		FriendItem        []item `json:"FriendItem"`
	}{CallbackCommand: imevent.CmdPrevFriendAdd, Requester_Account: "mallory", From_Account: "mallory"}
	for i, w := range wordings {
		body.FriendItem = append(body.FriendItem, item{To_Account: "id" + string(rune('1'+i)), AddWording: w})
	}
	data, _ := json.Marshal(body)
	cb := newCB(imevent.CmdPrevFriendAdd)
	cb.ID = imcallback.NewID()
	cb.OptPlatform = "Android"
	if err := imcallback.Decode(data, cb); err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestEngineDecidesEachTarget(t *testing.T) {
	h := newHarness(t, denyRules, true)
	cb := prevCallback(t, "hi, remember me?", "cheap LOANS here", "visit my casino")
	reply, err := h.eng.Handle(context.Background(), cb)
	if err != nil {
		t.Fatal(err)
	}
	want := []imcallback.ResultItem{
		{To_Account: "id1"}, // only the shadow rule denies it: allowed
		{To_Account: "id2", ResultCode: 38001, ResultInfo: "spam"},
		{To_Account: "id3", ResultCode: 38001, ResultInfo: "spam"},
	}
	if len(reply.ResultItem) != len(want) {
		t.Fatalf("reply %+v", reply)
	}
	for i := range want {
		if reply.ResultItem[i] != want[i] {
			t.Errorf("target %d: got %+v, want %+v", i, reply.ResultItem[i], want[i])
		}
	}
	// The deny rules' other actions go through the queue as usual.
	jobs := h.rec.wait(t, 2)
	notes := map[string]bool{}
	for _, j := range jobs {
		notes[j.Params["note"].(string)] = true
	}
	if !notes["spam from mallory to id2"] || !notes["spam from mallory to id3"] {
		t.Fatalf("jobs %v", notes)
	}

	// From the REST API everything is allowed.
	cb = prevCallback(t, "casino")
	cb.OptPlatform = "RESTAPI"
	for i := range cb.Events {
		cb.Events[i].OptPlatform = "RESTAPI"
	}
	reply, err = h.eng.Handle(context.Background(), cb)
	if err != nil || reply.ResultItem[0].ResultCode != 0 {
		t.Fatalf("RESTAPI: %+v %v", reply, err)
	}
}

const slowRules = `
rules:
  - name: slow
    on: [Sns.CallbackPrevFriendAdd]
    when: 'all(1..3000000, # > 0) && AddWording != "never"'
    actions:
      - deny: { code: 38001, reason: "slow" }
`

const failingRules = `
rules:
  - name: broken-at-runtime
    on: [Sns.CallbackPrevFriendAdd]
    when: int(AddWording) > 3
    actions:
      - deny: { code: 38001, reason: "number" }
`

func TestEngineDecisionFailOpenAndClosed(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
		closed      bool
		want        int
		decision    string
	}{
		{"timeout open", slowRules, false, 0, "fail_open"},
		{"timeout closed", slowRules, true, 38123, "fail_closed"},
		{"rule error open", failingRules, false, 0, "fail_open"},
		{"rule error closed", failingRules, true, 38123, "fail_closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.rules, false, func(e *Engine) {
				e.DecisionTimeout = time.Millisecond
				if tc.rules == failingRules {
					e.DecisionTimeout = time.Second
				}
				e.FailClosed, e.FailCode = tc.closed, 38123
			})
			cb := prevCallback(t, "not a number")
			reply, err := h.eng.Handle(context.Background(), cb)
			if err != nil {
				t.Fatal(err)
			}
			if got := reply.ResultItem[0].ResultCode; got != tc.want {
				t.Fatalf("ResultCode %d, want %d", got, tc.want)
			}
			if !strings.Contains(h.logs.String(), `"decision":"`+tc.decision+`"`) {
				t.Fatalf("no %s log line: %s", tc.decision, h.logs.String())
			}
		})
	}
}

// TestEngineRuleErrorsLoggedAndCounted: the rule errors Match returns are
// logged and counted for after-callbacks and before-callbacks alike.
func TestEngineRuleErrorsLoggedAndCounted(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: broken-after
    when: int(From_Account) > 3
    actions:
      - record: { note: "never" }
  - name: fine
    actions:
      - record: { note: "${ To_Account }" }
`+strings.TrimPrefix(failingRules, "\nrules:\n"), true)
	if _, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add.json")); err != nil {
		t.Fatal(err)
	}
	h.rec.wait(t, 3) // the other rule of the same events still runs
	if _, err := h.eng.Handle(context.Background(), prevCallback(t, "hello")); err != nil {
		t.Fatal(err)
	}
	type line struct {
		Msg       string `json:"msg"`
		Rule      string `json:"rule"`
		Error     string `json:"err"`
		Command   string `json:"command"`
		From      string `json:"from"`
		To        string `json:"to"`
		PairIndex *int   `json:"pair_index"`
	}
	perRule := map[string]int{}
	for raw := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line %s: %v", raw, err)
		}
		if l.Msg != "rule failed at run time; counted as no match" {
			continue
		}
		perRule[l.Rule]++
		if !strings.HasPrefix(l.Error, "when: ") || l.Command == "" || l.From == "" || l.To == "" || l.PairIndex == nil {
			t.Errorf("log line lacks attributes: %s", raw)
		}
	}
	if perRule["broken-after"] != 3 || perRule["broken-at-runtime"] != 1 {
		t.Errorf("rule error log lines per rule: %v", perRule)
	}
	out := scrape(t, h.eng.Metrics)
	for _, want := range []string{
		`friendflow_rule_errors_total{rule="broken-after"} 3`,
		`friendflow_rule_errors_total{rule="broken-at-runtime"} 1`,
		`friendflow_decisions_total{command="Sns.CallbackPrevFriendAdd",decision="fail_open"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestEngineNoRules(t *testing.T) {
	e := &Engine{Rules: func() *rules.Set { return nil }}
	if _, err := e.Handle(context.Background(), newCB(imevent.CmdFriendAdd)); !errors.Is(err, ErrNoRules) {
		t.Fatalf("err %v", err)
	}
}

func BenchmarkDecide100Rules(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("rules:\n")
	for i := range 99 {
		sb.WriteString("  - name: r" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + "\n")
		sb.WriteString("    on: [Sns.CallbackPrevFriendAdd]\n")
		switch i % 3 {
		case 0:
			sb.WriteString("    when: From_Account == \"flagged" + strings.Repeat("x", i) + "\"\n")
		case 1:
			sb.WriteString("    when: AddWording matches \"(?i)casino" + strings.Repeat("x", i) + "\"\n")
		default:
			sb.WriteString("    when: AddSource == \"AddSource_Type_Web\" && ForceAddFlags == 1\n")
		}
		sb.WriteString("    actions:\n      - deny: { code: 38001, reason: spam }\n")
	}
	sb.WriteString("  - name: spam\n    on: [Sns.CallbackPrevFriendAdd]\n    when: AddWording matches \"(?i)casino|loan\"\n    actions:\n      - deny: { code: 38002, reason: spam }\n")
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	var reg actions.Registry
	_ = reg.Register(&actions.Deny{})
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		b.Fatal(err)
	}
	e := &Engine{Rules: func() *rules.Set { return set }, Logger: slog.New(slog.DiscardHandler), DecisionTimeout: time.Second}
	cb := newCB(imevent.CmdPrevFriendAdd)
	if err := imcallback.Decode(callbacks.Must("prev_friend_add.json"), cb); err != nil {
		b.Fatal(err)
	}
	cb.Events[1].AddWording = "cheap loan"
	log := cbLogger{slog.New(slog.DiscardHandler), "bench", e.lines()}
	b.ReportAllocs()
	var samples []time.Duration
	for b.Loop() {
		start := time.Now()
		_, _, items, _ := e.decide(context.Background(), set, cb, log)
		samples = append(samples, time.Since(start))
		if items[1].ResultCode != 38002 || items[0].ResultCode != 0 {
			b.Fatalf("items %+v", items)
		}
	}
	reportPercentiles(b, samples)
}

// reportPercentiles adds p50 and p99 of samples to the benchmark's output.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(p float64) float64 {
		return float64(samples[int(p*float64(len(samples)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestEngineMetrics(t *testing.T) {
	h := newHarness(t, welcomeRules, true)
	h.eng.Metrics.WatchQueue(h.q.Stats)
	for range 2 {
		if _, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add.json")); err != nil {
		t.Fatal(err)
	}
	h.rec.wait(t, 1+2+2+3) // welcome once, audit for every pair
	out := scrape(t, h.eng.Metrics)
	for _, want := range []string{
		`friendflow_events_total{command="Sns.CallbackFriendAdd"} 7`,
		`friendflow_rule_matches_total{rule="welcome"} 4`,    // 2 callbacks x 2 pairs matched, one welcome sent
		`friendflow_rule_nonmatches_total{rule="welcome"} 3`, // the three friend_add pairs
		`friendflow_rule_matches_total{rule="audit-every-add"} 7`,
		`friendflow_rule_nonmatches_total{rule="audit-every-add"} 0`,
		`friendflow_rule_matches_total{rule="shadow-candidate"} 7`,
		`friendflow_once_skips_total{rule="welcome"} 3`,
		`friendflow_queue_up 1`,
		`friendflow_active_rules 3`,
		`friendflow_rules_info{hash="` + h.set.Hash() + `"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	waitMetric := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(scrape(t, h.eng.Metrics), want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("metrics never showed %s", want)
	}
	waitMetric(`friendflow_jobs_total{action="record",outcome="done"} 8`)
	waitMetric(`friendflow_queue_jobs 0`)
}

// timedKind signals the moment each job starts.
type timedKind struct{ started chan time.Time }

func (k *timedKind) Spec() actions.Spec { return actions.Spec{Name: "timed"} }
func (k *timedKind) Do(context.Context, actions.Job, map[string]any) error {
	k.started <- time.Now()
	return nil
}

// BenchmarkEnqueueToExecution measures, one callback at a time on the real
// embedded queue, the reply latency (matching + durable enqueue) and the
// time from the reply to the start of the job's action.
func BenchmarkEnqueueToExecution(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: r\n    actions:\n      - timed: {}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	k := &timedKind{started: make(chan time.Time, 1)}
	var reg actions.Registry
	_ = reg.Register(k)
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(dir, "data"), Registry: &reg, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Stop(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Run(ctx) }()
	e := &Engine{Rules: func() *rules.Set { return set }, Queue: q, Logger: log}
	data := callbacks.Must("friend_add_forced_by_admin.json")
	var reply, exec []time.Duration
	for b.Loop() {
		cb := newCB(imevent.CmdFriendAdd)
		cb.ID = imcallback.NewID()
		if err := imcallback.Decode(data, cb); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := e.Handle(context.Background(), cb); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		t2 := <-k.started
		reply = append(reply, t1.Sub(t0))
		exec = append(exec, t2.Sub(t1))
	}
	slices.Sort(reply)
	slices.Sort(exec)
	p := func(s []time.Duration, f float64) float64 { return float64(s[int(f*float64(len(s)-1))].Microseconds()) }
	b.ReportMetric(p(reply, .5), "reply-p50-µs")
	b.ReportMetric(p(reply, .99), "reply-p99-µs")
	b.ReportMetric(p(exec, .5), "to-exec-p50-µs")
	b.ReportMetric(p(exec, .99), "to-exec-p99-µs")
}

func TestEngineStoresTheLargestCallback(t *testing.T) {
	h := newHarness(t, `rules:
  - name: three-actions
    actions:
      - record: { note: "a ${ To_Account }" }
      - record: { note: "b ${ To_Account }" }
      - record: { note: "c ${ To_Account }" }
`, true)
	var sb strings.Builder
	sb.WriteString(`{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add","PairList":[`)
	for i := range imcallback.DefaultMaxPairs {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"From_Account":"user_with_a_long_name_%d","To_Account":"another_long_account_%d","Initiator_Account":"user_%d"}`, i, i, i)
	}
	sb.WriteString("]}")
	cb := newCB(imevent.CmdFriendAdd)
	cb.ID = imcallback.NewID()
	if err := imcallback.Decode([]byte(sb.String()), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Handle(context.Background(), cb); err != nil {
		t.Fatalf("a callback of %d pairs x 3 actions was refused: %v", imcallback.DefaultMaxPairs, err)
	}
	h.rec.wait(t, 3*imcallback.DefaultMaxPairs)
}

func TestEnginePrevDecidesEvenWhenJobsCannotBeStored(t *testing.T) {
	h := newHarness(t, denyRules, false, failingStore)
	reply, err := h.eng.Handle(context.Background(), prevCallback(t, "hello", "cheap loan"))
	if err != nil || reply.ActionStatus != "OK" || len(reply.ResultItem) != 2 || reply.ResultItem[1].ResultCode != 38001 {
		t.Fatalf("reply %+v, %v", reply, err)
	}
	out := scrape(t, h.eng.Metrics)
	if !strings.Contains(out, `friendflow_prev_jobs_unstored_total{command="Sns.CallbackPrevFriendAdd"} 1`) {
		t.Fatal("the unstored job was not counted")
	}
	if !strings.Contains(h.logs.String(), "these jobs will not run") {
		t.Fatal("the unstored job was not logged")
	}
}

// logFile is the path of a harness's log, a file in t.TempDir(). slog's
// handlers serialize their writes to it, and reading the file while the
// workers write is no data race.
type logFile string

// String is what has been logged so far.
func (l logFile) String() string {
	b, _ := os.ReadFile(string(l)) // a missing line fails the test that wants it
	return string(b)
}

var received = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newCB(cmd string) *imcallback.Callback {
	return &imcallback.Callback{Command: cmd, SdkAppid: 1400000000, ClientIP: "127.0.0.1", OptPlatform: "RESTAPI", ReceivedAt: received}
}

const (
	testAppID = 1400000000
	testToken = "s3cr3t-callback-token"
)

// TestEngineRecordsEachCallback: the Recorder sees every event with the
// rules that matched and failed, the Prev decisions and the jobs (their
// outcomes, reported by the queue's hooks, are engine/admin's tests').
func TestEngineRecordsEachCallback(t *testing.T) {
	ring := newRecordLog(t)
	h := newHarness(t, `
rules:
  - name: broken-after
    when: int(From_Account) > 3
    actions:
      - record: { note: "never" }
  - name: fine
    actions:
      - record: { note: "${ To_Account }" }
  - name: deny-loans
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan"
    actions:
      - deny: { code: 38001, reason: spam }
      - record: { note: "denied ${ To_Account }" }
`+strings.TrimPrefix(failingRules, "\nrules:\n"), true, func(e *Engine) { e.Recorder = ring })
	if _, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Handle(context.Background(), prevCallback(t, "cheap loan", "7")); err != nil {
		t.Fatal(err)
	}
	all := listRecorded(t, ring, record.Filter{})
	if len(all) != 5 {
		t.Fatalf("%d events recorded, want 3 pairs + 2 targets", len(all))
	}
	count := func(f record.Filter) int { return len(listRecorded(t, ring, f)) }
	for f, want := range map[record.Filter]int{
		{Outcome: "failed", Rule: "broken-after"}:      3,
		{Outcome: "matched", Rule: "fine"}:             3,
		{Outcome: "failed", Rule: "broken-at-runtime"}: 1, // int("cheap loan") fails; int("7") does not
		{Outcome: "denied"}:                            2, // by deny-loans, and by broken-at-runtime for "7"
		{Rule: "deny-loans"}:                           1,
	} {
		if got := count(f); got != want {
			t.Errorf("%+v: %d events, want %d", f, got, want)
		}
	}
	prev := all[0] // newest: the second target
	if prev.To != "id2" || prev.Decision == nil || prev.Decision.ResultCode != 38001 || prev.Decision.ResultInfo != "number" {
		t.Errorf("second target's decision: %+v", prev.Decision)
	}
	if j := all[1].Jobs; len(j) != 1 || j[0].Rule != "deny-loans" || j[0].Action != "record" || !strings.HasSuffix(j[0].ID, "-0-0-1") {
		t.Errorf("first target's jobs: %+v", j)
	}
	h.rec.wait(t, 4)
}
