package queue

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/internal/tracing"
)

// layout is the message format this queue writes: format 3 carries the
// jobs' trace context, and is written only when tracing is on.
func (q *Queue) layout() layout {
	if q.cfg.Tracer != nil {
		return formatV3
	}
	return formatV2
}

// jobSpan starts the span of one run of job under the queue's job context;
// without a tracer it returns that context and a nil span.
func (q *Queue) jobSpan(job *Job) (context.Context, trace.Span) {
	if q.cfg.Tracer == nil {
		return q.jobCtx, nil
	}
	return q.cfg.Tracer.Job(q.jobCtx, job.TraceParent, job.ID, job.Rule, job.Action, job.Attempt)
}

// endJobSpan ends a job run's span: failed when err is a failure; a job
// its action skipped (actions.Skip) is no failure, and says why.
func endJobSpan(span trace.Span, err error) {
	if why, ok := actions.Skipped(err); ok {
		span.SetAttributes(attribute.String("friendflow.job.outcome", OutcomeSkipped),
			attribute.String("friendflow.job.skipped", why))
		err = nil
	}
	tracing.End(span, err)
}
