package state

import (
	"context"
	"slices"
	"time"
)

// An increment is one Add of a key, waiting for its turn or written in
// a batch. Its fields but ctx, slot and done are guarded by the bucket's
// mu until done is closed.
type increment struct {
	ctx  context.Context
	slot int64 // rules.CounterSlot of the event's time
	done chan struct{}

	taken    bool // in a batch being written
	lead     bool // woken to write the next batch
	finished bool // n and err are set
	n        int
	err      error
}

// turn is a key being written by this replica: the increments that came
// while it is, to be written next, together, by the first of them.
type turn struct {
	waiting []*increment
}

// join makes inc the writer of key k when nobody writes it (true), or
// queues it behind the write under way (false: wait).
func (b *counterBucket) join(k string, inc *increment) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.turns[k]; t != nil {
		t.waiting = append(t.waiting, inc)
		return false
	}
	if b.turns == nil {
		b.turns = make(map[string]*turn)
	}
	b.turns[k] = &turn{}
	return true
}

// wait waits until inc was written in another's batch (inc.finished) or
// is to write the next batch itself (inc.lead). When ctx ends first, an
// increment still waiting leaves the queue (it is not counted); one
// already taken into a batch under way will be counted, though its
// caller is told of ctx's error, as when a write's answer is lost.
func (b *counterBucket) wait(ctx context.Context, k string, inc *increment) error {
	select {
	case <-inc.done:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case inc.finished, inc.lead:
		return nil // the others depend on a lead; a result is there
	case inc.taken:
		return ctx.Err()
	}
	t := b.turns[k]
	if i := slices.Index(t.waiting, inc); i >= 0 {
		t.waiting = slices.Delete(t.waiting, i, i+1)
	}
	return ctx.Err()
}

// take returns the batch lead writes: itself and every increment of k
// waiting, in the order they came.
func (b *counterBucket) take(k string, lead *increment) []*increment {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.turns[k]
	batch := make([]*increment, 0, 1+len(t.waiting))
	batch = append(batch, lead)
	batch = append(batch, t.waiting...)
	t.waiting = t.waiting[:0]
	for _, inc := range batch {
		inc.taken = true
	}
	return batch
}

// finish hands each increment of batch (written, or failed with err) its
// result, and the key's turn to the first increment that came since, or
// ends it.
func (b *counterBucket) finish(k string, batch []*increment, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, inc := range batch {
		inc.finished = true
		if err != nil {
			inc.n, inc.err = 0, err
		}
		if i > 0 { // batch[0] is the writer, not waiting
			close(inc.done)
		}
	}
	t := b.turns[k]
	if len(t.waiting) == 0 {
		delete(b.turns, k)
		return
	}
	next := t.waiting[0]
	t.waiting = t.waiting[1:]
	next.lead = true
	close(next.done)
}

// batchContext is the context a batch is written under: the writer's
// values, not cancelled with it, and the latest deadline of the batch's
// increments (none when one has none), so that a writer near its
// deadline does not fail increments that have time left.
func batchContext(batch []*increment) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(batch[0].ctx)
	var latest time.Time
	for _, inc := range batch {
		d, ok := inc.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}
