package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// script is a test action kind whose outcome is scripted per job by its
// "plan" parameter, counted over the calls for the job's id:
//
//	ok                   succeed
//	transient:N          fail transiently on the first N calls, then succeed
//	permanent[:N]        fail permanently (on the first N calls), then succeed
//	always               fail with an unclassified error every time
//	retryafter:D:N       fail transiently asking for D on the first N calls
//	block[:N]            wait for release or cancellation (on the first N calls)
//	panic                panic
//
// It records the start time and Attempt of every call.
type script struct {
	mu       sync.Mutex
	calls    map[string][]time.Time
	attempts map[string][]int
	done     map[string]int
	release  chan struct{}
	started  chan string
}

func newScript() *script {
	return &script{
		calls:    make(map[string][]time.Time),
		attempts: make(map[string][]int),
		done:     make(map[string]int),
		release:  make(chan struct{}),
		started:  make(chan string, 1024),
	}
}

func (s *script) Spec() actions.Spec {
	return actions.Spec{
		Name:   "script",
		Params: []actions.Param{{Name: "plan", Type: actions.String, Required: true}},
	}
}

func (s *script) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	now := time.Now()
	s.mu.Lock()
	s.calls[job.ID] = append(s.calls[job.ID], now)
	s.attempts[job.ID] = append(s.attempts[job.ID], job.Attempt)
	n := len(s.calls[job.ID])
	s.mu.Unlock()
	select {
	case s.started <- job.ID:
	default:
	}

	plan := strings.Split(params["plan"].(string), ":")
	count := func(i int) int { // the N argument at plan[i]; absent: every call
		if len(plan) <= i {
			return 1 << 30
		}
		v, err := strconv.Atoi(plan[i])
		if err != nil {
			panic(err)
		}
		return v
	}
	switch plan[0] {
	case "ok":
	case "transient":
		if n <= count(1) {
			return actions.Transient(fmt.Errorf("scripted transient failure %d", n), 0)
		}
	case "permanent":
		if n <= count(1) {
			return actions.Permanent(fmt.Errorf("scripted permanent failure %d", n))
		}
	case "always":
		return fmt.Errorf("scripted unclassified failure %d", n)
	case "retryafter":
		d, err := time.ParseDuration(plan[1])
		if err != nil {
			panic(err)
		}
		if n <= count(2) {
			return actions.Transient(errors.New("scripted rate limit"), d)
		}
	case "block":
		if n <= count(1) {
			select {
			case <-s.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	case "panic":
		panic("scripted panic")
	default:
		return actions.Permanent(fmt.Errorf("unknown plan %q", plan[0]))
	}
	s.mu.Lock()
	s.done[job.ID]++
	s.mu.Unlock()
	return nil
}

func (s *script) callTimes(id string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls[id]...)
}

func (s *script) attemptNumbers(id string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.attempts[id]...)
}

func (s *script) doneCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[id]
}

// doneTotals returns how many distinct jobs succeeded and how many
// successes there were in all.
func (s *script) doneTotals() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.done {
		distinct++
		total += n
	}
	return distinct, total
}

func mkJob(id, plan string) Job {
	return Job{Job: actions.Job{
		ID:     id,
		Rule:   "test-rule",
		Action: "script",
		Params: map[string]any{"plan": plan},
		Event:  json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob"}`),
	}}
}

// testLogger sends warnings and errors to the test log, until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs after every Stop
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// openTest opens an embedded queue in dir with s registered; edit adjusts
// the config. The queue is stopped when the test ends.
func openTest(t testing.TB, dir string, s *script, edit func(*Config)) *Queue {
	t.Helper()
	reg := &actions.Registry{}
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, Registry: reg, Logger: testLogger(t), Workers: 4}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	return q
}

// runTest starts q's workers; they stop when the test ends.
func runTest(t testing.TB, q *Queue) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- q.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = q.Stop(5 * time.Second)
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func enqueue(t testing.TB, q *Queue, callbackID string, jobs ...Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Enqueue(ctx, callbackID, jobs); err != nil {
		t.Fatal(err)
	}
}

// drained reports whether the jobs stream is empty and nothing is pending.
func drained(t testing.TB, q *Queue) bool {
	t.Helper()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Messages == 0 && st.InFlight == 0
}

// hookLog records hook calls.
type hookLog struct {
	mu          sync.Mutex
	outcomes    map[string][]string // job id → outcomes in order
	enqueued    int
	duplicates  int
	redelivered map[string]uint64
}

func newHookLog() *hookLog {
	return &hookLog{outcomes: make(map[string][]string), redelivered: make(map[string]uint64)}
}

func (h *hookLog) hooks() Hooks {
	return Hooks{
		Enqueued: func(_ string, jobs int, dup bool) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if dup {
				h.duplicates++
			} else {
				h.enqueued += jobs
			}
		},
		JobFinished: func(job *Job, outcome string, _ error, _ time.Duration) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.outcomes[job.ID] = append(h.outcomes[job.ID], outcome)
		},
		Redelivered: func(job *Job, n uint64) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.redelivered[job.ID] = n
		},
	}
}

func (h *hookLog) of(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.outcomes[id]...)
}
