package engine

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules"
	"golang.org/x/time/rate"
)

// peerRules writes the 100 rules of bench/peers/with-friendflow.sh's
// friendflow-match target (no actions) into a new directory.
func peerRules(tb testing.TB) string {
	var y strings.Builder
	y.WriteString("rules:\n")
	for i := 1; i <= 77; i++ {
		fmt.Fprintf(&y, "  - name: filler-%d\n    when: To_Account == \"nobody_%d\" && ForceFlag == 1\n    actions: []\n", i, i)
	}
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&y, "  - name: prefix-%d\n    when: To_Account startsWith \"vip_%d_\" || From_Account in [\"spam_%d\", \"bot_%d\"]\n    actions: []\n", i, i, i, i)
	}
	for _, t := range []string{"id1", "id2", "id3"} {
		fmt.Fprintf(&y, "  - name: pair-%s\n    when: To_Account == %q && ClientCmd == \"friend_add\"\n    actions: []\n", t, t)
	}
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(y.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// peerBody and peerQuery are bench/peers' request (callback.lua, anchors.sh).
const (
	peerBody  = `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"id","To_Account":"id1","Initiator_Account":"id"},{"From_Account":"id","To_Account":"id2","Initiator_Account":"id"},{"From_Account":"id","To_Account":"id3","Initiator_Account":"id"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":1}`
	peerQuery = "SdkAppid=1400000000&CallbackCommand=Sns.CallbackFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
)

// replyWriter is the least http.ResponseWriter: it keeps the status and
// the body's length, and its header map is emptied for the next request.
type replyWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *replyWriter) Header() http.Header { return w.h }
func (w *replyWriter) WriteHeader(s int)   { w.status = s }
func (w *replyWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

// matchOnlyServer is the receiver and engine as `friendflow serve` builds
// them (serve.go: newEngine, newReceiver) over the peer comparison's 100
// rules without actions, with metrics, unsigned, no recording.
func matchOnlyServer(tb testing.TB) *imcallback.Receiver {
	var reg actions.Registry
	_ = reg.Register(&actions.Log{})
	set, err := rules.Load(peerRules(tb), rules.Options{Registry: &reg})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	m := NewMetrics("bench", "bench")
	m.RulesLoaded(set)
	eng := &Engine{Rules: func() *rules.Set { return set }, Queue: memQueue{}, Logger: log, Metrics: m}
	return &imcallback.Receiver{SdkAppid: 1400000000, Handler: eng, Logger: log, Observe: m.ObserveCallback,
		RejectLogs: rate.NewLimiter(1, 10), Suppressed: m.LogsSuppressed.WithLabelValues("callback_rejected").Inc,
		Unsigned: m.Unsigned.Inc}
}

// BenchmarkServeMatchOnly is the handler's part of bench/peers'
// friendflow-match target, one callback per operation: query, checks,
// body read, decoding, matching 3 events against 100 rules, metrics and
// the reply, without net/http's own work (reading the request, writing
// the answer) and without recording. cpu-ns/callback includes the garbage
// collection of what it allocates.
func BenchmarkServeMatchOnly(b *testing.B) {
	rc := matchOnlyServer(b)
	req, err := http.NewRequest(http.MethodPost, "/callback?"+peerQuery, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.NewReader([]byte(peerBody))
	w := &replyWriter{h: http.Header{}}
	serve := func() {
		body.Reset([]byte(peerBody))
		req.Body = io.NopCloser(body)
		clear(w.h)
		w.status, w.n = 0, 0
		rc.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatal(w.status)
		}
	}
	serve()
	benchcpu.Loop(b, 1, serve)
}

// TestServeMatchOnlyMatches: the benchmark's server answers OK having
// matched each of the 3 events to its own pair rule, and counted them.
func TestServeMatchOnlyMatches(t *testing.T) {
	rc := matchOnlyServer(t)
	m := rc.Handler.(*Engine).Metrics
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, "/callback?"+peerQuery, strings.NewReader(peerBody))
		if err != nil {
			t.Fatal(err)
		}
		w := &replyWriter{h: http.Header{}}
		rc.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n != len(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`) {
			t.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
	out := scrape(t, m)
	for _, want := range []string{
		`friendflow_events_total{command="Sns.CallbackFriendAdd"} 9`,
		`friendflow_callbacks_total{command="Sns.CallbackFriendAdd",reason="",result="ok"} 3`,
		`friendflow_callback_duration_seconds_count{command="Sns.CallbackFriendAdd"} 3`,
		`friendflow_rule_matches_total{rule="pair-id1"} 3`,
		`friendflow_rule_nonmatches_total{rule="pair-id1"} 6`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
