package queue

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestJobsSurviveARestartBeforeRunning(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q1 := openTest(t, dir, s, nil)
	enqueue(t, q1, "cb1", mkJob("a", "ok"), mkJob("b", "ok"), mkJob("c", "ok"))
	later := mkJob("later", "ok")
	later.Due = time.Now().Add(300 * time.Millisecond)
	enqueue(t, q1, "cb2", later)
	if err := q1.Stop(time.Second); err != nil {
		t.Fatal(err)
	}

	q2 := openTest(t, dir, s, nil)
	runTest(t, q2)
	eventually(t, 10*time.Second, "all jobs done", func() bool {
		d, _ := s.doneTotals()
		return d == 4
	})
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q2) })
	for _, id := range []string{"a", "b", "c", "later"} {
		if n := s.doneCount(id); n != 1 {
			t.Errorf("%s ran %d times, want 1", id, n)
		}
	}
	if at := s.callTimes("later")[0]; at.Before(later.Due) {
		t.Errorf("delayed job ran %v early", later.Due.Sub(at))
	}
}

// startRun runs q's workers and returns a channel with Run's result.
func startRun(q *Queue) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- q.Run(context.Background()) }()
	return errc
}

func TestStopLetsARunningJobFinish(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q1 := openTest(t, dir, s, nil)
	runErr := startRun(q1)
	enqueue(t, q1, "cb", mkJob("slow", "block"))
	if id := <-s.started; id != "slow" {
		t.Fatalf("started %s", id)
	}
	stopErr := make(chan error, 1)
	go func() { stopErr <- q1.Stop(10 * time.Second) }()
	eventually(t, 5*time.Second, "stop to begin", q1.isStopping)
	close(s.release) // the job finishes within Stop's timeout
	if err := <-stopErr; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := s.doneCount("slow"); n != 1 {
		t.Fatalf("slow done %d times", n)
	}

	// Its ack reached the store before the server stopped: nothing is left
	// to redeliver.
	q2 := openTest(t, dir, s, nil)
	if !drained(t, q2) {
		st, _ := q2.Stats(context.Background())
		t.Fatalf("after restart: %+v, want an empty queue", st)
	}
}

func TestStopInterruptsAJobAndItRunsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q1 := openTest(t, dir, s, nil)
	runErr := startRun(q1)
	enqueue(t, q1, "cb", mkJob("stuck", "block:1")) // blocks on its first call only
	<-s.started
	if err := q1.Stop(200 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := s.doneCount("stuck"); n != 0 {
		t.Fatalf("interrupted job counted done %d times", n)
	}

	h := newHookLog()
	q2 := openTest(t, dir, s, func(c *Config) { c.Hooks = h.hooks() })
	start := time.Now()
	runTest(t, q2)
	// Released with a persisted redelivery time of "now": it comes back at
	// once, not after the 30 s ack wait.
	eventually(t, 10*time.Second, "the job to run again", func() bool { return s.doneCount("stuck") == 1 })
	t.Logf("redelivered and done %v after restart", time.Since(start))
	if got := s.attemptNumbers("stuck"); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("attempts %v, want [1 1]: an interrupted attempt does not count", got)
	}
	h.mu.Lock()
	n := h.redelivered["stuck"]
	h.mu.Unlock()
	if n != 2 {
		t.Errorf("Redelivered hook saw %d deliveries, want 2", n)
	}
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q2) })
}

func TestStopBetweenJobsOfACallbackKeepsTheDoneOnesDone(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q1 := openTest(t, dir, s, func(c *Config) { c.Workers = 1 })
	runErr := startRun(q1)
	enqueue(t, q1, "cb", mkJob("first", "ok"), mkJob("second", "block:1"), mkJob("third", "ok"))
	for id := range s.started {
		if id == "second" {
			break
		}
	}
	if err := q1.Stop(200 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-runErr

	q2 := openTest(t, dir, s, nil)
	runTest(t, q2)
	eventually(t, 10*time.Second, "the rest of the callback done", func() bool {
		return s.doneCount("second") == 1 && s.doneCount("third") == 1
	})
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q2) })
	if n := s.doneCount("first"); n != 1 {
		t.Errorf("first ran %d times, want 1", n)
	}
	if n := len(s.callTimes("third")); n != 1 {
		t.Errorf("third called %d times, want 1", n)
	}
	// Interrupted, second went into a message of its own as it was before
	// the attempt.
	if got := s.attemptNumbers("second"); !slices.Equal(got, []int{1, 1}) {
		t.Errorf("second's attempts %v, want [1 1]: an interrupted attempt does not count", got)
	}
}

func TestRunAfterStop(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	if err := q.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := q.Run(context.Background()); err == nil {
		t.Error("Run after Stop succeeded")
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx) }()
	enqueue(t, q, "cb", mkJob("a", "ok"))
	eventually(t, 5*time.Second, "job done", func() bool { return s.doneCount("a") == 1 })
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestEmbeddedListenerIsOptIn(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	if addr := q.ns.Addr(); addr != nil {
		t.Errorf("embedded server listens on %v without Listen", addr)
	}

	s := newScript()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	q = openTest(t, t.TempDir(), s, func(c *Config) {
		c.Listen = addr
		c.SyncAlways = true
	})
	runTest(t, q)
	enqueue(t, q, "cb", mkJob("synced", "ok"))
	eventually(t, 10*time.Second, "job done", func() bool { return s.doneCount("synced") == 1 })

	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), newNames(DefaultNamespace).jobsStream)
	if err != nil {
		t.Fatalf("jobs stream over TCP: %v", err)
	}
	if st.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("jobs stream retention %v", st.CachedInfo().Config.Retention)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no data dir":            {},
		"replicas without a URL": {DataDir: t.TempDir(), Replicas: 3},
		"listen with a URL":      {URL: "nats://127.0.0.1:1", Listen: "127.0.0.1:0"},
		"bad listen address":     {DataDir: t.TempDir(), Listen: "nowhere"},
	} {
		if q, err := Open(ctx, cfg); err == nil {
			_ = q.Stop(time.Second)
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

func TestEnqueueAfterRunEndsUntilStop(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q := openTest(t, dir, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx) }()
	eventually(t, 5*time.Second, "workers started", q.started.Load)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Workers are gone, but a callback still in flight can be stored.
	enqueue(t, q, "late", mkJob("late", "ok"))
	if err := q.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := q.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	q2 := openTest(t, dir, s, nil)
	runTest(t, q2)
	eventually(t, 10*time.Second, "late job done", func() bool { return s.doneCount("late") == 1 })
}
