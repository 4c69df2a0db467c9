package engine

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/internal/tracing"
)

// cbTrace is the trace of one callback. Its methods do nothing on a nil
// *cbTrace, which is what the callback path holds when tracing is off.
type cbTrace struct {
	t    *tracing.Tracer
	ctx  context.Context // carries the callback's span
	span trace.Span
	tp   string // the span's traceparent, stored with every job
}

// handleTraced is Handle inside a callback span with match and store child
// spans; decoding is covered by the span starting at ReceivedAt.
func (e *Engine) handleTraced(ctx context.Context, cb *imcallback.Callback) (imcallback.Reply, error) {
	ctx, span := e.Tracer.Callback(ctx, cb.ID, cb.Command, len(cb.Events), cb.ReceivedAt)
	tr := &cbTrace{t: e.Tracer, ctx: ctx, span: span, tp: tracing.TraceParent(span)}
	reply, err := e.handle(ctx, cb, tr)
	tracing.End(span, err)
	return reply, err
}

// start starts a child span of the callback's; nil without a trace.
func (c *cbTrace) start(name string) trace.Span {
	if c == nil {
		return nil
	}
	_, s := c.t.Start(c.ctx, name)
	return s
}

func (c *cbTrace) traceParent() string {
	if c == nil {
		return ""
	}
	return c.tp
}

func (c *cbTrace) setJobs(n int) {
	if c != nil {
		c.span.SetAttributes(attribute.Int("friendflow.callback.jobs", n))
	}
}

// endSpan ends s, if any, marking it failed when err is not nil.
func endSpan(s trace.Span, err error) {
	if s != nil {
		tracing.End(s, err)
	}
}
