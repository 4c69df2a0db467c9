package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// beatMsg counts InProgress calls and notes any made after it was marked
// finished (acked).
type beatMsg struct {
	jetstream.Msg // nil: only InProgress is called
	beats, late   atomic.Int32
	finished      atomic.Bool
}

// InProgress takes a while, as a signal to the server does: a stop that
// did not wait for it would mark the message finished meanwhile.
func (m *beatMsg) InProgress() error {
	m.beats.Add(1)
	time.Sleep(20 * time.Microsecond)
	if m.finished.Load() {
		m.late.Add(1)
	}
	return nil
}

// TestKeeperNeverSignalsAfterStop: with beats as frequent as timers allow,
// no message hears one after stop returned, and a held message keeps
// getting them.
func TestKeeperNeverSignalsAfterStop(t *testing.T) {
	k := &keeper{every: time.Microsecond}
	var msgs []*beatMsg
	for i := range 2000 {
		m := &beatMsg{}
		msgs = append(msgs, m)
		k.start(m)
		if i%100 == 0 {
			eventually(t, 5*time.Second, "a beat", func() bool { return m.beats.Load() >= 2 })
		}
		k.stop()
		m.finished.Store(true)
	}
	for i, m := range msgs {
		if n := m.late.Load(); n > 0 {
			t.Fatalf("message %d: %d InProgress after stop", i, n)
		}
	}
	// Idle, the keeper sends nothing.
	k = &keeper{every: time.Millisecond}
	m := &beatMsg{}
	k.start(m)
	eventually(t, 5*time.Second, "beats", func() bool { return m.beats.Load() >= 3 })
	k.stop()
	n := m.beats.Load()
	time.Sleep(20 * time.Millisecond) // twenty periods: a leaked timer would beat
	if got := m.beats.Load(); got != n {
		t.Errorf("%d beats after stop", got-n)
	}
}

// ctxProbe is what an action can observe of its context.
type ctxProbe struct {
	err, cause   error
	done         bool
	hasDeadline  bool
	derivedErr   error
	afterFuncRan bool
}

func (p ctxProbe) String() string {
	return fmt.Sprintf("err %v, cause %v, done %v, deadline %v, derived err %v, AfterFunc ran %v",
		p.err, p.cause, p.done, p.hasDeadline, p.derivedErr, p.afterFuncRan)
}

func probe(ctx context.Context) ctxProbe {
	p := ctxProbe{err: ctx.Err(), cause: context.Cause(ctx)}
	select {
	case <-ctx.Done():
		p.done = true
	default:
	}
	_, p.hasDeadline = ctx.Deadline()
	d, cancel := context.WithCancel(ctx)
	p.derivedErr = d.Err()
	cancel()
	return p
}

// TestJobContextActsAsWithTimeout runs the same scenarios on a jobContext
// and on context.WithTimeout, and compares what an action sees.
func TestJobContextActsAsWithTimeout(t *testing.T) {
	type scenario func(ctx context.Context, parentCancel, release func()) []ctxProbe
	const short = 30 * time.Millisecond
	waitDone := func(ctx context.Context) {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	scenarios := map[string]struct {
		timeout time.Duration
		run     scenario
	}{
		"running": {time.Minute, func(ctx context.Context, _, _ func()) []ctxProbe {
			return []ctxProbe{probe(ctx)}
		}},
		"released": {time.Minute, func(ctx context.Context, _, release func()) []ctxProbe {
			before := probe(ctx)
			release()
			return []ctxProbe{before, probe(ctx)}
		}},
		"released, Done never asked before": {time.Minute, func(ctx context.Context, _, release func()) []ctxProbe {
			release()
			return []ctxProbe{probe(ctx)}
		}},
		"parent cancelled while waiting": {time.Minute, func(ctx context.Context, parentCancel, _ func()) []ctxProbe {
			ctx.Done()
			parentCancel()
			waitDone(ctx)
			return []ctxProbe{probe(ctx)}
		}},
		"parent cancelled before Done": {time.Minute, func(ctx context.Context, parentCancel, _ func()) []ctxProbe {
			parentCancel()
			waitDone(ctx)
			return []ctxProbe{probe(ctx)}
		}},
		"deadline while waiting": {short, func(ctx context.Context, _, _ func()) []ctxProbe {
			waitDone(ctx)
			return []ctxProbe{probe(ctx)}
		}},
		"deadline, seen by Err": {short, func(ctx context.Context, _, _ func()) []ctxProbe {
			deadline, _ := ctx.Deadline()
			for time.Now().Before(deadline.Add(short)) {
				time.Sleep(time.Millisecond)
			}
			for ctx.Err() == nil && time.Now().Before(deadline.Add(5*time.Second)) {
				time.Sleep(time.Millisecond) // WithTimeout's timer may lag
			}
			return []ctxProbe{probe(ctx)}
		}},
		"derived context follows": {time.Minute, func(ctx context.Context, parentCancel, _ func()) []ctxProbe {
			d, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			ran := make(chan struct{})
			context.AfterFunc(ctx, func() { close(ran) })
			parentCancel()
			waitDone(d)
			p := probe(d)
			select {
			case <-ran:
				p.afterFuncRan = true
			case <-time.After(5 * time.Second):
			}
			return []ctxProbe{p}
		}},
	}
	for name, sc := range scenarios {
		var got, want []ctxProbe
		{
			parent, parentCancel := context.WithCancel(context.Background())
			c := &jobContext{}
			c.init(parent, time.Now().Add(sc.timeout))
			got = sc.run(c, parentCancel, func() { c.cancel(context.Canceled) })
			c.cancel(context.Canceled)
			parentCancel()
		}
		{
			parent, parentCancel := context.WithCancel(context.Background())
			ctx, cancel := context.WithTimeout(parent, sc.timeout)
			want = sc.run(ctx, parentCancel, cancel)
			cancel()
			parentCancel()
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d probes, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s, probe %d:\n jobContext %v\nWithTimeout %v", name, i, got[i], want[i])
			}
		}
	}
}

// TestJobTimeoutEndsAHungAction: an action still running at JobTimeout
// sees its context end with DeadlineExceeded, and the job is retried.
func TestJobTimeoutEndsAHungAction(t *testing.T) {
	s := newScript()
	h := newHookLog()
	var mu sync.Mutex
	var errs []error
	q := openTest(t, t.TempDir(), s, func(c *Config) {
		c.JobTimeout = 100 * time.Millisecond
		c.Rand = func() float64 { return 1 } // the hook of the retry precedes the next attempt's
		hooks := h.hooks()
		finished := hooks.JobFinished
		hooks.JobFinished = func(job *Job, outcome string, err error, took time.Duration) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			finished(job, outcome, err, took)
		}
		c.Hooks = hooks
	})
	runTest(t, q)
	job := mkJob("hung", "block:1") // blocks on its first call only
	job.Retry = Retry{Backoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	enqueue(t, q, "cb-hung", job)
	eventually(t, 10*time.Second, "the job done", func() bool { return s.doneCount("hung") == 1 })
	eventually(t, 5*time.Second, "two outcomes", func() bool { return len(h.of("hung")) == 2 })
	if got := h.of("hung"); !slices.Equal(got, []string{OutcomeRetried, OutcomeDone}) {
		t.Errorf("outcomes %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("first attempt ended with %v, want the deadline", errs[0])
	}
	if times := s.callTimes("hung"); times[1].Sub(times[0]) < 100*time.Millisecond {
		t.Errorf("retried %v after the first call, before the job timeout", times[1].Sub(times[0]))
	}
}
