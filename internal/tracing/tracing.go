// Package tracing is friendflow's OpenTelemetry tracing: a span per
// callback, a span per job run linked to its callback's span, and the W3C
// traceparent that carries a span context in job messages and outgoing
// webhooks.
//
// Tracing is off unless the standard OpenTelemetry environment variables
// turn it on (see FromEnv). Off, there is no *Tracer at all: callers hold a
// nil *Tracer and check it before starting a span, so the callback path
// pays one nil check.
package tracing

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope name of friendflow's spans.
const scope = "github.com/friendflow/friendflow"

// Tracer starts friendflow's spans. Only Shutdown may be called on a nil
// *Tracer; its other methods need one.
type Tracer struct {
	t        trace.Tracer
	shutdown func(context.Context) error
}

// New returns a Tracer on tp (tests pass an SDK provider with an in-memory
// exporter); FromEnv builds one from the environment.
func New(tp trace.TracerProvider) *Tracer {
	return &Tracer{t: tp.Tracer(scope)}
}

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// traceContext is the W3C Trace Context propagator
// (https://www.w3.org/TR/trace-context/); it holds no state.
var traceContext propagation.TraceContext

// Callback starts the span of one callback. The span starts when the
// callback was received, so decoding is inside it; the "decoded" event
// marks where decoding ended and matching began.
func (t *Tracer) Callback(ctx context.Context, id, command string, events int, received time.Time) (context.Context, trace.Span) {
	ctx, span := t.t.Start(ctx, "callback "+command,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(received),
		trace.WithAttributes(
			attribute.String("friendflow.callback.id", id),
			attribute.String("friendflow.callback.command", command),
			attribute.Int("friendflow.callback.events", events),
		))
	span.AddEvent("decoded")
	return ctx, span
}

// Start starts a child span of the span in ctx (match, store).
func (t *Tracer) Start(ctx context.Context, name string) (context.Context, trace.Span) {
	return t.t.Start(ctx, name)
}

// Job starts the span of one job run. The job runs long after its
// callback was answered, often in another process, so its span starts a
// trace of its own, linked to the callback's span (given as the traceparent
// stored with the job) rather than parented by it
// (https://opentelemetry.io/docs/concepts/signals/traces/#span-links).
func (t *Tracer) Job(ctx context.Context, traceparent, id, rule, action string, attempt int) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("friendflow.job.id", id),
			attribute.String("friendflow.rule", rule),
			attribute.String("friendflow.action", action),
			attribute.Int("friendflow.job.attempt", attempt),
		),
	}
	if sc := FromTraceParent(traceparent); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return t.t.Start(ctx, "job "+action, opts...)
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceParent returns the W3C traceparent header value of span, "" when
// its context is not valid.
func TraceParent(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// FromTraceParent parses a traceparent header value; the result is not
// valid when tp is empty or malformed.
func FromTraceParent(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// Inject sets the traceparent (and tracestate) header of an outgoing
// request to the span in ctx; without a span it sets nothing.
func Inject(ctx context.Context, h http.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		traceContext.Inject(ctx, propagation.HeaderCarrier(h))
	}
}
