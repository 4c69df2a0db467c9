package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// mergeKind merges jobs by their "key" param and records each call's job
// ids; "fail" makes a job's own result transient once, "panic" panics.
type mergeKind struct {
	mu     sync.Mutex
	calls  [][]string
	failed map[string]bool
}

func (m *mergeKind) Spec() actions.Spec {
	return actions.Spec{Name: "merge", Params: []actions.Param{
		{Name: "key", Type: actions.String, Required: true},
		{Name: "plan", Type: actions.String, Enum: []string{"ok", "fail", "panic"}, Default: "ok"},
	}}
}

func (m *mergeKind) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	return m.DoMerged(ctx, []actions.Job{job}, []map[string]any{params})[0]
}

func (m *mergeKind) MergeKey(params map[string]any) string {
	k, _ := params["key"].(string)
	return k
}

func (m *mergeKind) DoMerged(_ context.Context, jobs []actions.Job, params []map[string]any) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
		switch params[i]["plan"] {
		case "panic":
			panic("scripted")
		case "fail":
			if !m.failed[j.ID] {
				m.failed[j.ID] = true
				errs[i] = actions.Transient(errors.New("scripted"), 0)
			}
		}
	}
	slices.Sort(ids)
	m.calls = append(m.calls, ids)
	return errs
}

func (m *mergeKind) callsOf() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func mergeJob(id, key, plan string) Job {
	j := mkJob(id, "")
	j.Action = "merge"
	j.Params = map[string]any{"key": key, "plan": plan}
	j.Retry = Retry{Attempts: 3, Backoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	return j
}

// Jobs of one message with one key run in one call; other keys, and jobs
// whose params do not check, run alone; each job keeps its own outcome.
func TestMergerRunsDueJobsTogether(t *testing.T) {
	m := &mergeKind{failed: map[string]bool{}}
	reg := &actions.Registry{}
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	hooks := newHookLog()
	q := openTest(t, t.TempDir(), newScript(), func(c *Config) { c.Registry = reg; c.Hooks = hooks.hooks() })
	runTest(t, q)
	bad := mergeJob("bad", "k1", "ok")
	bad.Params["plan"] = "explode"
	enqueue(t, q, "cb", mergeJob("a", "k1", "ok"), mergeJob("b", "k2", "ok"), mergeJob("c", "k1", "fail"),
		bad, mergeJob("d", "k1", "ok"))
	eventually(t, 10*time.Second, "jobs to settle", func() bool {
		return len(hooks.of("c")) == 2 && len(hooks.of("a")) == 1 && len(hooks.of("b")) == 1 && len(hooks.of("bad")) == 1
	})
	calls := m.callsOf()
	if !slices.ContainsFunc(calls, func(c []string) bool { return slices.Equal(c, []string{"a", "c", "d"}) }) ||
		!slices.ContainsFunc(calls, func(c []string) bool { return slices.Equal(c, []string{"b"}) }) ||
		!slices.ContainsFunc(calls, func(c []string) bool { return slices.Equal(c, []string{"c"}) }) || len(calls) != 3 {
		t.Errorf("calls %v, want [a c d], [b], and c's retry alone", calls)
	}
	for id, want := range map[string][]string{"a": {OutcomeDone}, "d": {OutcomeDone}, "b": {OutcomeDone},
		"c": {OutcomeRetried, OutcomeDone}, "bad": {OutcomeDead}} {
		sameOutcomes(t, id, hooks.of(id), want)
	}
}

// A panic in DoMerged is every merged job's dead letter, and the workers
// go on.
func TestMergerPanic(t *testing.T) {
	m := &mergeKind{failed: map[string]bool{}}
	reg := &actions.Registry{}
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	hooks := newHookLog()
	q := openTest(t, t.TempDir(), newScript(), func(c *Config) { c.Registry = reg; c.Hooks = hooks.hooks() })
	runTest(t, q)
	enqueue(t, q, "cb", mergeJob("p1", "k", "panic"), mergeJob("p2", "k", "ok"))
	enqueue(t, q, "cb2", mergeJob("after", "k", "ok"))
	eventually(t, 10*time.Second, "jobs to settle", func() bool {
		return len(hooks.of("p1")) == 1 && len(hooks.of("p2")) == 1 && len(hooks.of("after")) == 1
	})
	dead, err := q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, d := range dead {
		reasons = append(reasons, d.ID+": "+d.Reason)
	}
	slices.Sort(reasons)
	if !slices.Equal(reasons, []string{"p1: action panicked", "p2: action panicked"}) {
		t.Errorf("dead letters %v", reasons)
	}
	if got := hooks.of("after"); !slices.Equal(got, []string{OutcomeDone}) {
		t.Errorf("after: %v", got)
	}
}

// BenchmarkMergeUnits is what grouping costs a message of three jobs whose
// kinds do not merge (the common case: log, webhook, im.send).
func BenchmarkMergeUnits(b *testing.B) {
	reg := &actions.Registry{}
	if err := reg.Register(newScript()); err != nil {
		b.Fatal(err)
	}
	q := &Queue{cfg: Config{Registry: reg}}
	due := []Job{mkJob("a", "ok"), mkJob("b", "ok"), mkJob("c", "ok")}
	b.ReportAllocs()
	for b.Loop() {
		if q.mergeUnits(due) != nil {
			b.Fatal("merged")
		}
	}
}
