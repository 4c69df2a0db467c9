package queue

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/friendflow/friendflow/internal/tracing"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestFormat3CarriesTraceParent: format 3 records end with the job's
// traceparent; format 2, written without tracing, has none and still
// decodes; a format 3 message cut short is refused.
func TestFormat3CarriesTraceParent(t *testing.T) {
	a, b := mkJob("a", "ok"), mkJob("b", "ok")
	a.TraceParent, b.TraceParent = testTraceParent, ""
	for _, l := range []layout{formatV2, formatV3} {
		body, err := l.callback(nil, "cb", []Job{a, b})
		if err != nil {
			t.Fatal(err)
		}
		data := append(l.header(nil, 2), body...)
		jobs, err := decodeJobs(data)
		if err != nil {
			t.Fatalf("format %d: %v", l, err)
		}
		want := ""
		if l == formatV3 {
			want = testTraceParent
		}
		if jobs[0].TraceParent != want || jobs[1].TraceParent != "" || jobs[0].ID != "a" || string(jobs[1].Event) != string(b.Event) {
			t.Errorf("format %d decoded to %+v", l, jobs)
		}
		if l == formatV3 {
			if _, err := decodeJobs(data[:len(data)-1]); err == nil {
				t.Error("a truncated format 3 message decoded")
			}
		}
	}
}

// TestTracedQueueRunsOldMessagesAndLinksJobSpans: a queue with a tracer
// writes format 3, still runs the format 2 messages a queue without one
// stored, and gives every run of a job a span linked to the callback's
// span, retries included.
func TestTracedQueueRunsOldMessagesAndLinksJobSpans(t *testing.T) {
	s := newScript()
	dir := t.TempDir()
	old := openTest(t, dir, s, nil)
	enqueue(t, old, "cb-old", mkJob("old", "ok"))
	if got := lastMessage(t, old)[0]; got != formatV2 {
		t.Fatalf("a queue without tracer wrote format %d", got)
	}
	if err := old.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	exp := tracetest.NewInMemoryExporter()
	q := openTest(t, dir, s, func(c *Config) {
		c.Tracer = tracing.New(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	})
	j := mkJob("new", "transient:1")
	j.Retry = Retry{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}
	j.TraceParent = testTraceParent
	enqueue(t, q, "cb-new", j)
	if got := lastMessage(t, q)[0]; got != formatV3 {
		t.Fatalf("a queue with a tracer wrote format %d", got)
	}
	runTest(t, q)
	eventually(t, 10*time.Second, "both jobs done", func() bool { return s.doneCount("old") == 1 && s.doneCount("new") == 1 })
	eventually(t, 10*time.Second, "three job spans", func() bool { return len(exp.GetSpans()) == 3 })
	linked := 0
	for _, sp := range exp.GetSpans() {
		id := ""
		for _, kv := range sp.Attributes {
			if kv.Key == "friendflow.job.id" {
				id = kv.Value.AsString()
			}
		}
		switch {
		case id == "old" && len(sp.Links) != 0:
			t.Errorf("the format 2 job's span has links %v", sp.Links)
		case id == "new":
			if len(sp.Links) != 1 || sp.Links[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("job span links %v", sp.Links)
			}
			linked++
		}
	}
	if linked != 2 {
		t.Errorf("%d linked spans for the job run twice", linked)
	}
}

// lastMessage returns the body of the newest message in the jobs stream.
func lastMessage(t *testing.T, q *Queue) []byte {
	t.Helper()
	ctx := context.Background()
	// A callback's message: on the held path, where the queue runs it.
	info, err := q.held.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := q.held.stream.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	return m.Data
}
