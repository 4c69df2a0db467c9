package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/friendflow/friendflow/examples/callbacks"
)

// otlpReceiver is an OTLP/HTTP trace endpoint (protobuf) that keeps the
// spans it receives and the service.name they came with.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	service string
	bad     error
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	err := proto.Unmarshal(body, &req)
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		o.bad = fmt.Errorf("%s %s (%s): %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func (o *otlpReceiver) named(name string) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// runTraced starts the binary with env, sends one callback whose rule
// calls a webhook, stops it, and returns the traceparent the webhook got.
func runTraced(t *testing.T, env []string) (traceparent string) {
	t.Helper()
	got := make(chan string, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case got <- r.Header.Get("Traceparent"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	rulesDir := t.TempDir()
	rule := fmt.Sprintf("rules:\n  - name: notify\n    actions:\n      - webhook: { url: %q }\n", hook.URL)
	if err := os.WriteFile(filepath.Join(rulesDir, "r.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, env, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rulesDir, "--data", t.TempDir())
	waitReady(t, admin)
	if status, reply := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", callbacks.Must("friend_add_forced_by_admin.json")); status != 200 {
		t.Fatalf("callback: %d %s", status, reply)
	}
	select {
	case traceparent = <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("the webhook was never called:\n%s", p.logs())
	}
	// SIGTERM: the spans still batched are exported before the exit.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs())
	}
	return traceparent
}

// TestTracingFromEnvEndToEnd: the standard OTEL_* variables turn tracing
// on in the real binary; its spans reach an OTLP/HTTP receiver: the
// callback's with match and store children, the job's linked to it, and
// the webhook carries the job's span as traceparent. Without them, no
// traceparent goes out.
func TestTracingFromEnvEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	rcv := &otlpReceiver{}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	tp := runTraced(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_SERVICE_NAME=friendflow-e2e"})

	if rcv.bad != nil {
		t.Fatalf("export: %v", rcv.bad)
	}
	if rcv.service != "friendflow-e2e" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", rcv.service)
	}
	cbs, jobs := rcv.named("callback Sns.CallbackFriendAdd"), rcv.named("job webhook")
	if len(cbs) != 1 || len(jobs) != 1 {
		t.Fatalf("%d callback spans and %d job spans, want 1 and 1", len(cbs), len(jobs))
	}
	cb, job := cbs[0], jobs[0]
	for _, name := range []string{"match", "store"} {
		s := rcv.named(name)
		if len(s) != 1 || !bytes.Equal(s[0].ParentSpanId, cb.SpanId) {
			t.Errorf("%s: %d spans, not a child of the callback span", name, len(s))
		}
	}
	if len(job.Links) != 1 || !bytes.Equal(job.Links[0].TraceId, cb.TraceId) || !bytes.Equal(job.Links[0].SpanId, cb.SpanId) {
		t.Errorf("job span links %v, want the callback span", job.Links)
	}
	if want := "00-" + hex.EncodeToString(job.TraceId) + "-" + hex.EncodeToString(job.SpanId) + "-01"; tp != want {
		t.Errorf("webhook traceparent %q, want %q", tp, want)
	}

	if tp := runTraced(t, nil); tp != "" {
		t.Errorf("tracing off, the webhook got traceparent %q", tp)
	}
}

// TestTracingEnvErrorStopsTheStart: an OTLP protocol friendflow cannot
// speak is a configuration error naming the variable, before anything
// starts.
func TestTracingEnvErrorStopsTheStart(t *testing.T) {
	env := map[string]string{"FRIENDFLOW_SDKAPPID": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--data", t.TempDir(), "--rules", t.TempDir()}, &stdout, &stderr, func(k string) string { return env[k] })
	if code != 2 || !strings.Contains(stderr.String(), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: friendflow exports traces over http/protobuf only") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
