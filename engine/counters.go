package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// count counts ev in the set's counters before its rules see it (docs/rules.md,
// "Counters"). A counter that cannot be counted is logged here; the rules that
// read it fail, and a Prev decision then falls back to the engine's
// fail-open or fail-closed answer.
func (e *Engine) count(ctx context.Context, set *rules.Set, ev *imevent.Event) *rules.Counts {
	c := set.Count(ctx, ev, e.Counters, e.now())
	if err := c.Err(); err != nil {
		e.lines().log(e.logger(), slog.LevelWarn, "counter state unavailable; rules reading it fail for this event",
			"err", err.Error(), "command", ev.CallbackCommand, "pair_index", ev.PairIndex)
	}
	return c
}

// stateContext is the context of state operations for a callback that
// must be decided by deadline: ctx's values, the earlier of the two
// deadlines, and no cancellation by ctx. A set without counters has no
// state operation: ctx itself, costing nothing.
func stateContext(ctx context.Context, set *rules.Set, deadline time.Time) (context.Context, context.CancelFunc) {
	if !set.HasCounters() {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}
