package engine

import (
	"context"
	"fmt"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

// markCancel notes the pairs of cb, whose command some rule's cancel_on
// lists, before the callback is answered: their pending actions with that
// cancel_on are dropped when they fall due (queue.MarkCancel). A callback
// whose notes could not be stored fails like one whose jobs could not be:
// answering OK would let a follow-up reach someone who just unfriended.
// An event of a command no rule cancels on costs an index lookup.
func (e *Engine) markCancel(ctx context.Context, set *rules.Set, cb *imcallback.Callback) error {
	if !set.CancelsOn(cb.Command) {
		return nil
	}
	pairs := make([]queue.Pair, 0, len(cb.Events))
	for i := range cb.Events {
		ev := &cb.Events[i]
		pairs = append(pairs, queue.Pair{From: ev.From_Account, To: ev.To_Account})
	}
	if err := e.Queue.MarkCancel(ctx, cb.Command, pairs, e.now(), cb.ID); err != nil {
		return fmt.Errorf("cancel_on markers: %w", err)
	}
	if e.Metrics != nil {
		e.Metrics.CancelMarks.WithLabelValues(cb.Command).Add(float64(len(pairs)))
	}
	return nil
}
