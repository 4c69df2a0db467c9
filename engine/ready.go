package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

// storeFailHold is how long a failed store keeps Ready false when no
// callback has been stored since: long enough to cover the kubelet's probe
// period, short enough that a replica taken out of rotation (which then
// gets no callbacks to prove itself with) comes back to try again.
const storeFailHold = 15 * time.Second

// maxRulesWait bounds how long a callback that arrives before the first
// rules load waits for them: well inside Tencent's 2 s, leaving a Prev
// callback its decision time.
const maxRulesWait = time.Second

// storeHealth is what the engine saw of the queue's writes: the time of
// the last callback whose jobs were stored, and of the last whose jobs
// could not be.
type storeHealth struct {
	lastOK, lastFail atomic.Int64 // Unix nanoseconds; 0: never
	lastErr          atomic.Pointer[string]
}

// stored notes the outcome of one callback's Enqueue. A caller that hung
// up, or a callback whose jobs are over what one may store, says nothing
// about the store.
func (e *Engine) stored(ctx context.Context, err error) {
	now := e.now().UnixNano()
	switch {
	case err == nil:
		e.health.lastOK.Store(now)
	case ctx.Err() == nil && !errors.Is(err, queue.ErrCallbackTooLarge):
		msg := err.Error()
		e.health.lastErr.Store(&msg)
		e.health.lastFail.Store(now)
	}
}

// Ready is an admin readiness check: false while callbacks would be
// refused, which the queue's own check cannot always see (a store that
// answers its health check but refuses the jobs): the last callback's
// jobs could not be stored, none was stored since, and that was less than
// storeFailHold ago.
func (e *Engine) Ready() error {
	fail, ok := e.health.lastFail.Load(), e.health.lastOK.Load()
	if fail == 0 || ok > fail || e.now().Sub(time.Unix(0, fail)) > storeFailHold {
		return nil
	}
	why := "unknown"
	if p := e.health.lastErr.Load(); p != nil {
		why = *p
	}
	return fmt.Errorf("the last callback's jobs could not be stored (%s ago): %s", e.now().Sub(time.Unix(0, fail)).Round(time.Second), why)
}

// rules returns the active rule set; before the first load it waits for
// one, up to maxRulesWait and ctx: a callback that arrives while the
// process starts is answered with its rules, not refused.
func (e *Engine) rules(ctx context.Context) *rules.Set {
	if set := e.Rules(); set != nil || e.RulesLoaded == nil {
		return set
	}
	t := time.NewTimer(maxRulesWait)
	defer t.Stop()
	select {
	case <-e.RulesLoaded:
	case <-t.C:
	case <-ctx.Done():
	}
	return e.Rules()
}
