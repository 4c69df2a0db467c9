package queue

import (
	"context"
	"sync"
	"time"
)

// jobContext is the context an action runs under. It behaves as
// context.WithTimeout(parent, JobTimeout) followed by cancel once the action
// has returned: done when the queue interrupts its jobs (parent), at the
// deadline, or after the action. What it saves is the cost of getting
// there: WithTimeout starts a timer and registers with the parent for every
// job (a tenth of the whole enqueue-and-run CPU, with the parent's lock
// contended by every worker), while most actions (log, the decisions) never
// wait on their context. Here the timer and the parent link are set up by
// the first call to Done; Err and Deadline answer without them.
type jobContext struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	done   chan struct{} // made by the first Done
	err    error
	timer  *time.Timer
	unlink func() bool // stops the context.AfterFunc on parent
}

// init prepares c for one run. c must not be in use.
func (c *jobContext) init(parent context.Context, deadline time.Time) {
	c.parent = parent
	c.deadline = deadline
}

func (c *jobContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *jobContext) Value(key any) any { return c.parent.Value(key) }

func (c *jobContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.poll()
	return c.err
}

func (c *jobContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.poll()
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	c.unlink = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	return c.done
}

// poll notices a cancellation or a deadline that nothing reported yet (the
// timer and the parent link exist only once Done was called).
func (c *jobContext) poll() {
	if c.err != nil {
		return
	}
	if err := c.parent.Err(); err != nil {
		c.cancelLocked(err)
	} else if !time.Now().Before(c.deadline) {
		c.cancelLocked(context.DeadlineExceeded)
	}
}

// cancel ends c with err, unless it has ended already.
func (c *jobContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelLocked(err)
}

func (c *jobContext) cancelLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.unlink != nil {
		c.unlink()
	}
}
