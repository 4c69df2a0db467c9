package main

import (
	"sync/atomic"

	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
)

// recordHooks lets the queue's hooks, set when it opens, reach the
// recording, which is made from the queue afterwards.
type recordHooks struct{ log atomic.Pointer[record.Log] }

// Hooks returns next with the recording's job updates.
func (h *recordHooks) Hooks(next queue.Hooks) queue.Hooks {
	return record.Hooks(next, h.log.Load)
}
