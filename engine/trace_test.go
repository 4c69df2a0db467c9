package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/internal/tracing"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// spanNamed returns the ended span called name, waiting for it: a job's
// span ends after its action returns, on a worker goroutine.
func spanNamed(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no span %q among %v", name, exp.GetSpans())
	return tracetest.SpanStub{}
}

// TestTracingCallbackJobAndWebhook: with a tracer, a callback gets a span
// (decode as its "decoded" event, match and store as children), the job
// run on the real queue gets a span of its own linked to the callback's,
// and the webhook the job sends carries the job span as traceparent.
func TestTracingCallbackJobAndWebhook(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracer := tracing.New(tp)
	headers := make(chan http.Header, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		headers <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	dir := t.TempDir()
	yaml := fmt.Sprintf("rules:\n  - name: notify\n    actions:\n      - webhook: { url: %q }\n", hook.URL)
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var reg actions.Registry
	if err := reg.Register(&actions.Webhook{}); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(dir, "data"), Registry: &reg, Logger: log, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Run(ctx) }()
	e := &Engine{Rules: func() *rules.Set { return set }, Queue: q, Logger: log, Tracer: tracer}

	cb := newCB(imevent.CmdFriendAdd)
	cb.ID = imcallback.NewID()
	cb.ReceivedAt = time.Now().Add(-time.Millisecond)
	if err := imcallback.Decode([]byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b","Initiator_Account":"a"}],"ClientCmd":"friend_add","AdminForceFlag":0,"EventTime":1}`), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Handle(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	var h http.Header
	select {
	case h = <-headers:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook was never called")
	}

	root := spanNamed(t, exp, "callback Sns.CallbackFriendAdd")
	if root.SpanKind != trace.SpanKindServer || !root.StartTime.Equal(cb.ReceivedAt) ||
		len(root.Events) != 1 || root.Events[0].Name != "decoded" {
		t.Errorf("callback span: kind %v, start %v (received %v), events %v", root.SpanKind, root.StartTime, cb.ReceivedAt, root.Events)
	}
	for _, name := range []string{"match", "store"} {
		if s := spanNamed(t, exp, name); s.Parent.SpanID() != root.SpanContext.SpanID() || s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("%s span is not a child of the callback span", name)
		}
	}
	job := spanNamed(t, exp, "job webhook")
	if job.SpanContext.TraceID() == root.SpanContext.TraceID() || job.Parent.IsValid() {
		t.Error("the job span is not the root of a trace of its own")
	}
	if len(job.Links) != 1 || job.Links[0].SpanContext.TraceID() != root.SpanContext.TraceID() ||
		job.Links[0].SpanContext.SpanID() != root.SpanContext.SpanID() {
		t.Errorf("job span links %v, want the callback span %v", job.Links, root.SpanContext)
	}
	sent := tracing.FromTraceParent(h.Get("Traceparent"))
	if sent.TraceID() != job.SpanContext.TraceID() || sent.SpanID() != job.SpanContext.SpanID() {
		t.Errorf("webhook traceparent %q, want the job span %v", h.Get("Traceparent"), job.SpanContext)
	}
}

// BenchmarkHandleCallbackTraced is BenchmarkHandleCallback with tracing on
// (every span sampled, none exported): what tracing costs when wanted.
func BenchmarkHandleCallbackTraced(b *testing.B) {
	e, data := benchEngine(b)
	e.Tracer = tracing.New(sdktrace.NewTracerProvider())
	benchHandle(b, e, data)
}
