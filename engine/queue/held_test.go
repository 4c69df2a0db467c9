package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
)

// crash ends q as kill -9 would, as far as the others can tell: its lease
// is no longer renewed, its connection is gone, and nothing is handed
// over; its running actions are interrupted (their runs count nothing).
func crash(q *Queue) {
	q.stopOnce.Do(func() { q.stopErr = ErrStopped }) // Stop: nothing more happens
	q.closed.Store(true)
	q.beginStop() // its workers take nothing more
	close(q.held.stop)
	q.held.loops.Wait()
	q.cancelJobs()
	q.nc.Close()
	close(q.commitStop)
	q.committers.Wait()
}

// TestHeldJobsOfACrashedReplicaRunOnAnother: replica A stores callbacks
// whose jobs it holds in memory, its workers busy, and crashes before
// running them; replica B, on the same cluster, takes A's subject over
// once A's lease has expired, and every job runs exactly once.
func TestHeldJobsOfACrashedReplicaRunOnAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	s := newScript()
	t.Cleanup(func() { close(s.release) })
	const ttl = 3 * time.Second
	open := func(h Hooks) *Queue {
		reg := &actions.Registry{}
		if err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q, err := Open(ctx, Config{URL: cluster.URLs, Replicas: 3, Registry: reg, Workers: 4, Logger: testLogger(t), Hooks: h, leaseTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}

	a := open(Hooks{})
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()
	// A's four workers block on the first run of these jobs...
	for i := range 4 {
		enqueue(t, a, fmt.Sprintf("busy%d", i), mkJob(fmt.Sprintf("busy%d", i), "block:1"))
	}
	for range 4 {
		select {
		case <-s.started:
		case <-time.After(30 * time.Second):
			t.Fatal("A's workers did not start the blocking jobs")
		}
	}
	// ...so these wait in A's memory, stored on A's subject.
	const callbacks = 200
	var ids []string
	for i := range callbacks {
		jobs := []Job{mkJob(fmt.Sprintf("cb%d-a", i), "ok"), mkJob(fmt.Sprintf("cb%d-b", i), "ok")}
		ids = append(ids, jobs[0].ID, jobs[1].ID)
		enqueue(t, a, fmt.Sprintf("cb%d", i), jobs...)
	}
	st, err := a.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Jobs != 4+2*callbacks {
		t.Fatalf("A holds %+v, want %d jobs stored", st, 4+2*callbacks)
	}
	if d, _ := s.doneTotals(); d != 0 {
		t.Fatalf("%d jobs ran before the crash, want none", d)
	}
	crash(a)
	stopRun()
	if err := <-runDone; err != nil {
		t.Errorf("A's Run: %v", err)
	}
	if d, _ := s.doneTotals(); d != 0 {
		t.Fatalf("%d jobs of the crashed replica ran, want none", d)
	}

	h := newHookLog()
	b := open(h.hooks())
	t.Cleanup(func() { _ = b.Stop(5 * time.Second) })
	runTest(t, b)
	for i := range 4 {
		ids = append(ids, fmt.Sprintf("busy%d", i))
	}
	eventually(t, 60*time.Second, "every job of the crashed replica done", func() bool {
		d, _ := s.doneTotals()
		return d == len(ids)
	})
	eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, b) })
	for _, id := range ids {
		if n := s.doneCount(id); n != 1 {
			t.Errorf("%s done %d times, want 1", id, n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.redelivered) != len(ids) {
		t.Errorf("Redelivered hook saw %d jobs, want %d: a takeover's jobs may have run", len(h.redelivered), len(ids))
	}
}

// TestLostLeaseSendsCallbacksToTheSharedQueue: a replica whose lease was
// claimed by another (it stalled past the lease) stores nothing more on
// its held subject; its callbacks go to the shared queue and still run.
func TestLostLeaseSendsCallbacksToTheSharedQueue(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, func(c *Config) { c.leaseTTL = 600 * time.Millisecond })
	runTest(t, q)
	enqueue(t, q, "before", mkJob("before", "ok"))
	eventually(t, 10*time.Second, "the held job done", func() bool { return s.doneCount("before") == 1 })

	// Another replica claims the lease, as after an expiry.
	ctx := context.Background()
	id := q.held.log.id
	if err := q.held.leases.Purge(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := q.held.leases.Create(ctx, id, []byte("taken over by another")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replica to notice", func() bool {
		q.held.log.mu.Lock()
		defer q.held.log.mu.Unlock()
		return q.held.log.lost
	})
	info, err := q.held.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "after", mkJob("after", "ok"))
	eventually(t, 10*time.Second, "the job after the loss done", func() bool { return s.doneCount("after") == 1 })
	if now, err := q.held.stream.Info(ctx); err != nil || now.State.LastSeq != info.State.LastSeq {
		t.Errorf("held stream last sequence %d → %v (%v): a callback was held after the lease was lost", info.State.LastSeq, now, err)
	}
	eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, q) })
}

// TestACallbackStoredAgainWithOthersStoresThem: a callback enqueued again
// (a retry after an unknown outcome) that heads a group with other
// callbacks must not make the server take the group for the earlier
// message: the others were never stored.
func TestACallbackStoredAgainWithOthersStoresThem(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	runTest(t, q)
	enqueue(t, q, "x", mkJob("x", "ok"))
	eventually(t, 10*time.Second, "x done", func() bool { return s.doneCount("x") == 1 })

	commitOf := func(cb string) *commit {
		data, err := q.layout().callback(nil, cb, []Job{mkJob(cb, "ok")})
		if err != nil {
			t.Fatal(err)
		}
		return &commit{callbackID: cb, data: data, jobs: 1, layout: q.layout(), done: make(chan error, 1)}
	}
	x, y := commitOf("x"), commitOf("y")
	q.publishGroup([]*commit{x, y}, nil) // as the committer gathers them
	for _, c := range []*commit{x, y} {
		if err := <-c.done; err != nil {
			t.Fatalf("%s: %v", c.callbackID, err)
		}
	}
	eventually(t, 10*time.Second, "y done", func() bool { return s.doneCount("y") == 1 })
	eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, q) })
}
