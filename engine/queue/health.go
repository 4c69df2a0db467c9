package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// The embedded store's health. A write the store cannot make (a full disk,
// an I/O error) is sticky in nats-server: the stream keeps the error, the
// file store returns it for every later write, and publishes get no answer
// at all, so each callback would wait out its publish retries (10 s) long
// after Tencent (2 s) has given up, until a restart. A full disk can also
// make the server turn JetStream off ("JetStream out of resources, will be
// DISABLED"). So the queue watches the server's own health check, fails
// enqueues at once while the store cannot write, and recovers by itself:
// once a test write to the data directory passes, JetStream is restarted in
// the running server, which reloads the streams from disk with their
// errors cleared.

const (
	// healthEvery is how often the embedded server's health is checked:
	// it bounds how long an enqueue caught by a fault waits (far inside
	// Tencent's 2 s).
	healthEvery = 250 * time.Millisecond
	// recoverEvery is how often a store that cannot write is retried.
	recoverEvery = time.Second
	// probeBytes is written to the data directory before JetStream is
	// restarted: room for the next messages, not just for a test file.
	probeBytes = 1 << 20
)

// storeState is the store's health as enqueues see it.
type storeState struct {
	err    error           // why the store cannot write; nil when it can
	ctx    context.Context // publishes derive from it; cancelled when a fault is found
	cancel context.CancelFunc
}

func newStoreState() *storeState {
	st := &storeState{}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	return st
}

// ErrStoreFault wraps why the store cannot write.
var ErrStoreFault = errors.New("queue: the store cannot write")

// StoreError is nil while the store can write, or says why it cannot; a
// store that cannot write recovers by itself when the cause is fixed.
func (q *Queue) StoreError() error { return q.store.Load().err }

// storeContext is ctx, also cancelled when a store fault is found, for a
// write that would otherwise wait out its timeout on a store that does not
// answer; with a fault already known it returns the fault.
func (q *Queue) storeContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	st := q.store.Load()
	if st.err != nil {
		return nil, nil, st.err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(st.ctx, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// faulted records a store fault: enqueues fail at once, and those
// already publishing are interrupted.
func (q *Queue) faulted(why string) {
	st := q.store.Load()
	if st.err != nil {
		return
	}
	err := fmt.Errorf("%w: %s", ErrStoreFault, why)
	if !q.store.CompareAndSwap(st, &storeState{err: err, ctx: st.ctx, cancel: st.cancel}) {
		return // found by another goroutine meanwhile
	}
	st.cancel()
	q.log.Error("the store cannot write: callbacks get FAIL and /readyz is false until it recovers, which it does by itself once the cause is fixed (free disk space under --data)",
		"err", why, "data", q.cfg.DataDir)
}

// watchStore checks the embedded server's health until Stop, and recovers
// the store after a fault.
func (q *Queue) watchStore() {
	defer q.committers.Done()
	t := time.NewTicker(healthEvery)
	defer t.Stop()
	lastTry := time.Time{}
	for {
		select {
		case <-q.commitStop:
			return
		case <-t.C:
		}
		if q.store.Load().err == nil {
			if why := q.writeFault(); why != "" {
				q.faulted(why)
			}
			continue
		}
		if time.Since(lastTry) < recoverEvery {
			continue
		}
		lastTry = time.Now()
		if err := q.recoverStore(); err != nil {
			q.log.Debug("store not recovered yet", "err", err)
			continue
		}
		q.store.Store(newStoreState())
		q.log.Info("the store can write again: accepting callbacks", "data", q.cfg.DataDir)
	}
}

// writeFault is why the embedded server cannot write, from its health
// check, or "". Only write errors and JetStream turned off count: a
// stream being created can be briefly "not recovered" in the check, which
// a restart must not answer.
func (q *Queue) writeFault() string {
	notEnabled := server.NewJSNotEnabledError().Error()
	var why []string
	for _, e := range q.ns.Healthz(&server.HealthzOptions{Details: true}).Errors {
		if e.Error == notEnabled || strings.Contains(e.Error, "write error") {
			why = append(why, e.Error)
		}
	}
	return strings.Join(why, "; ")
}

// recoverStore restarts JetStream in the embedded server once the data
// directory takes a write again.
func (q *Queue) recoverStore() error {
	if err := probeWrite(q.cfg.DataDir); err != nil {
		return err
	}
	q.apiMu.Lock() // no held-path API call in flight (storeCalls)
	defer q.apiMu.Unlock()
	if q.ns.JetStreamEnabled() {
		if err := q.ns.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop JetStream: %w", err)
		}
	}
	if err := q.ns.EnableJetStream(jetStreamConfig(q.cfg)); err != nil {
		return fmt.Errorf("restart JetStream: %w", err)
	}
	if why := q.writeFault(); why != "" {
		return errors.New(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	return q.dropAcked(ctx)
}

// dropAcked removes jobs messages the consumer has acknowledged but the
// store kept: in a work-queue stream an ack removes the message, and a
// removal the store could not write leaves it behind the consumer's ack
// floor, never delivered again and counted as queued forever.
func (q *Queue) dropAcked(ctx context.Context) error {
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	si, err := q.jobs.Info(ctx)
	if err != nil {
		return fmt.Errorf("jobs stream: %w", err)
	}
	floor := ci.AckFloor.Stream
	if si.State.Msgs == 0 || si.State.FirstSeq > floor {
		return nil
	}
	if err := q.jobs.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return fmt.Errorf("drop acknowledged messages up to %d: %w", floor, err)
	}
	q.log.Warn("removed acknowledged jobs messages the store had kept after a write error", "up_to_seq", floor)
	return nil
}

// probeWrite writes, syncs and removes a file of probeBytes in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// jetStreamConfig is the embedded server's JetStream configuration, as the
// server builds it from startEmbedded's options at start.
func jetStreamConfig(cfg Config) *server.JetStreamConfig {
	return &server.JetStreamConfig{StoreDir: filepath.Clean(cfg.DataDir), SyncAlways: cfg.SyncAlways, Strict: true, CompressOK: true}
}
