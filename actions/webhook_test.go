package actions_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/webhooktest"
)

// received is what a test server saw of one request.
type received struct {
	Method string
	Path   string
	Host   string
	Header http.Header
	Body   []byte
}

// hookServer records requests and answers with handle (nil: 204).
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	conns atomic.Int32
}

func newHookServer(t *testing.T, handle http.HandlerFunc) *hookServer {
	t.Helper()
	s := &hookServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, received{r.Method, r.URL.Path, r.Host, r.Header.Clone(), body})
		s.mu.Unlock()
		if handle == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		handle(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

// runHook checks params like the loader does and runs the kind.
func runHook(t *testing.T, w *actions.Webhook, job actions.Job, params map[string]any) error {
	t.Helper()
	p, err := w.Spec().Check(params)
	if err != nil {
		t.Fatalf("Check(%v): %v", params, err)
	}
	return w.Do(context.Background(), job, p)
}

func class(err error) string {
	if err == nil {
		return "ok"
	}
	perm, after := actions.Classify(err)
	if perm {
		return "permanent"
	}
	return fmt.Sprintf("transient %v", after)
}

var testJob = actions.Job{
	ID: "job-42", Rule: "welcome", Action: "webhook",
	Event: json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob"}`),
}

func TestWebhookSpec(t *testing.T) {
	spec := (&actions.Webhook{}).Spec()
	p, err := spec.Check(map[string]any{"url": "https://crm.internal/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if p["method"] != "POST" || p["timeout"] != 5*time.Second || p["follow_redirects"] != false {
		t.Errorf("defaults %v", p)
	}
	for _, ok := range []map[string]any{
		{"url": actions.Deferred{}},
		{"url": "http://127.0.0.1:9/x?token=1", "method": "PUT", "headers": map[string]any{"Authorization": actions.Deferred{}, "Host": "crm"}},
		{"url": "https://h", "timeout": "5m", "body": map[string]any{"a": actions.Deferred{}}},
		{"url": "https://h", "body": "raw text", "secret": "s"},
	} {
		if _, err := spec.Check(ok); err != nil {
			t.Errorf("Check(%v): %v", ok, err)
		}
	}
	for want, bad := range map[string]map[string]any{
		"url: required":                 {},
		"scheme must be http or https":  {"url": "ftp://h/x"},
		"url: URL has no host":          {"url": "https:///x"},
		"url: invalid URL":              {"url": "http://[::1"},
		`"HEAD" is not one of`:          {"url": "https://h", "method": "HEAD"},
		"invalid header name":           {"url": "https://h", "headers": map[string]any{"Bad Name": "x"}},
		"is set by friendflow":          {"url": "https://h", "headers": map[string]any{"x-friendflow-delivery": "x"}},
		"line break":                    {"url": "https://h", "headers": map[string]any{"X-A": "a\r\nX-B: b"}},
		"timeout: 0s is outside":        {"url": "https://h", "timeout": "0s"},
		"timeout: 10m0s is outside":     {"url": "https://h", "timeout": "10m"},
		"body: body is 1048577 bytes":   {"url": "https://h", "body": strings.Repeat("x", actions.MaxWebhookBody+1)},
		"follow_redirects: want bool":   {"url": "https://h", "follow_redirects": "yes"},
		"unknown parameter":             {"url": "https://h", "retries": 3},
		"body: cannot encode as JSON":   {"url": "https://h", "body": map[string]any{"f": func() {}}},
		"headers.X-Num: want string":    {"url": "https://h", "headers": map[string]any{"X-Num": []any{1}}},
		"timeout: invalid duration \"5": {"url": "https://h", "timeout": "5 seconds"},
	} {
		_, err := spec.Check(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", bad, err, want)
		}
	}
}

func TestWebhookDefaultRequest(t *testing.T) {
	srv := newHookServer(t, nil)
	var w actions.Webhook // the zero value
	params := map[string]any{"url": srv.URL + "/hooks/friend", "secret": "hook-secret"}
	for range 2 {
		if err := runHook(t, &w, testJob, params); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	checkDefaultRequest(t, r)
	// A retry is the same delivery: same id, same body, its own verified
	// signature of its attempt's time.
	if reqs[1].Header.Get(actions.HeaderDelivery) != "job-42" || reqs[1].Header.Get("webhook-id") != "job-42" || string(reqs[1].Body) != string(r.Body) {
		t.Error("a retry differs from the first attempt")
	}
	verifyStandard(t, reqs[1], "whsec_"+base64.StdEncoding.EncodeToString([]byte("hook-secret")))
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for two requests, want 1 (keep-alive)", n)
	}

	// Without a secret there is no signature; an event-less job sends null.
	if err := runHook(t, &w, actions.Job{ID: "j2", Rule: "r"}, map[string]any{"url": srv.URL}); err != nil {
		t.Fatal(err)
	}
	r = srv.requests()[2]
	for _, h := range []string{actions.HeaderSignature, actions.HeaderWebhookSignature, actions.HeaderWebhookID, actions.HeaderWebhookTimestamp} {
		if _, signed := r.Header[h]; signed {
			t.Errorf("%s without a secret", h)
		}
	}
	if string(r.Body) != `{"event":null,"rule":"r","job_id":"j2"}` {
		t.Errorf("body %s", r.Body)
	}
}

// checkDefaultRequest checks TestWebhookDefaultRequest's first request:
// method, path, headers, the default body and its signature.
func checkDefaultRequest(t *testing.T, r received) {
	t.Helper()
	if r.Method != "POST" || r.Path != "/hooks/friend" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", "User-Agent": "friendflow", actions.HeaderDelivery: "job-42",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	want := `{"event":{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob"},"rule":"welcome","job_id":"job-42"}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	// The receiver's check, as the specification says: a secret without
	// whsec_ is its own bytes, which whsec_ and their base64 serialize.
	if r.Header.Get("webhook-id") != "job-42" {
		t.Errorf("webhook-id %q, want the delivery id", r.Header.Get("webhook-id"))
	}
	verifyStandard(t, r, "whsec_"+base64.StdEncoding.EncodeToString([]byte("hook-secret")))
	if _, legacy := r.Header[actions.HeaderSignature]; legacy {
		t.Error("the deprecated signature without legacy_signature")
	}
}

// verifyStandard verifies r with the independent implementation of the
// Standard Webhooks specification, holding secrets.
func verifyStandard(t *testing.T, r received, secrets ...string) {
	t.Helper()
	v, err := webhooktest.NewVerifier(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.Header, r.Body, time.Now()); err != nil {
		t.Errorf("Standard Webhooks verification: %v (headers %v)", err, r.Header)
	}
}

// TestWebhookStandardSignature: whsec_ secrets are base64 keys; during a
// rotation (secret and secrets) a receiver holding either key verifies and
// one holding neither does not; a changed body, id or an old timestamp
// fails; the deprecated header comes only with legacy_signature.
func TestWebhookStandardSignature(t *testing.T) {
	srv := newHookServer(t, nil)
	var w actions.Webhook
	newKey, oldKey, otherKey := "whsec_"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"+base64.StdEncoding.EncodeToString([]byte("another key of 24 bytes!"))
	params := map[string]any{"url": srv.URL, "secret": newKey, "secrets": []any{oldKey}, "legacy_signature": true}
	if err := runHook(t, &w, testJob, params); err != nil {
		t.Fatal(err)
	}
	r := srv.requests()[0]
	if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 2 {
		t.Errorf("%d signatures for two secrets: %q", n, r.Header.Get("webhook-signature"))
	}
	verifyStandard(t, r, newKey)
	verifyStandard(t, r, oldKey)
	v, _ := webhooktest.NewVerifier(otherKey)
	if err := v.Verify(r.Header, r.Body, time.Now()); err == nil {
		t.Error("a third key verifies")
	}
	v, _ = webhooktest.NewVerifier(newKey)
	tampered := r.Header.Clone()
	tampered.Set("webhook-id", "job-43")
	for name, c := range map[string]struct {
		h    http.Header
		body string
		now  time.Time
	}{
		"body":           {r.Header, string(r.Body) + " ", time.Now()},
		"id":             {tampered, string(r.Body), time.Now()},
		"replayed later": {r.Header, string(r.Body), time.Now().Add(webhooktest.Tolerance + time.Minute)},
	} {
		if err := v.Verify(c.h, []byte(c.body), c.now); err == nil {
			t.Errorf("a changed %s verifies", name)
		}
	}
	m := hmac.New(sha256.New, []byte(newKey)) // the old scheme: the secret's bytes as they are
	m.Write(r.Body)
	if got, want := r.Header.Get(actions.HeaderSignature), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("legacy signature %q, want %q", got, want)
	}

	spec := w.Spec()
	for want, bad := range map[string]map[string]any{
		"secret: a whsec_ secret must be base64":          {"url": "https://h", "secret": "whsec_not*base64"},
		"secrets: item 2: a whsec_ secret must be base64": {"url": "https://h", "secrets": []any{newKey, "whsec_%"}},
		"legacy_signature: needs secret":                  {"url": "https://h", "secrets": []any{newKey}, "legacy_signature": true},
		"header webhook-signature is set by friendflow":   {"url": "https://h", "headers": map[string]any{"webhook-signature": "v1,x"}},
	} {
		if _, err := spec.Check(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", bad, err, want)
		}
	}
}

func TestWebhookCustomRequest(t *testing.T) {
	srv := newHookServer(t, nil)
	w := &actions.Webhook{Client: &http.Client{}, UserAgent: "friendflow/1.2.3"}
	err := runHook(t, w, testJob, map[string]any{
		"url": srv.URL + "/x", "method": "PUT", "body": "plain <text> & more",
		"headers": map[string]any{"Content-Type": "text/plain", "Authorization": "Bearer t", "Host": "crm.internal", "X-Count": 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := runHook(t, w, testJob, map[string]any{"url": srv.URL, "body": map[string]any{"user": "<alice>", "n": 1}}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	r := reqs[0]
	if r.Method != "PUT" || string(r.Body) != "plain <text> & more" || r.Host != "crm.internal" {
		t.Errorf("%s host %s body %q", r.Method, r.Host, r.Body)
	}
	for k, want := range map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer t", "X-Count": "3", "User-Agent": "friendflow/1.2.3"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := string(reqs[1].Body); got != `{"n":1,"user":"<alice>"}` {
		t.Errorf("JSON body %s", got)
	}
}

func TestWebhookStatusClasses(t *testing.T) {
	date := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		status     int
		retryAfter string
		want       string
	}{
		{200, "", "ok"},
		{201, "", "ok"},
		{204, "", "ok"},
		{500, "", "transient 0s"},
		{502, "", "transient 0s"},
		{503, "120", "transient 2m0s"},
		{408, "", "transient 0s"},
		{429, "3", "transient 3s"},
		{429, "soon", "transient 0s"},
		{400, "", "permanent"},
		{401, "", "permanent"},
		{404, "", "permanent"},
		{410, "", "permanent"},
		{422, "", "permanent"},
	}
	for _, tt := range tests {
		srv := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
			if tt.retryAfter != "" {
				w.Header().Set("Retry-After", tt.retryAfter)
			}
			w.WriteHeader(tt.status)
			fmt.Fprintf(w, "  reason\n\tfor %d  ", tt.status)
		})
		err := runHook(t, &actions.Webhook{}, testJob, map[string]any{"url": srv.URL + "/h?token=abc"})
		if got := class(err); got != tt.want {
			t.Errorf("%d: %s (%v), want %s", tt.status, got, err, tt.want)
		}
		if err != nil {
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(tt.status)) || !strings.Contains(msg, fmt.Sprintf("reason for %d", tt.status)) {
				t.Errorf("%d: message %q lacks the status or the body snippet", tt.status, msg)
			}
		}
	}
	srv := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", date)
		w.WriteHeader(429)
	})
	_, after := actions.Classify(runHook(t, &actions.Webhook{}, testJob, map[string]any{"url": srv.URL}))
	if after < 100*time.Second || after > 2*time.Minute {
		t.Errorf("Retry-After date: %v, want about 2m", after)
	}
}

func TestWebhookRedirects(t *testing.T) {
	target := newHookServer(t, nil)
	redirector := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/loop", http.StatusFound)
			return
		}
		http.Redirect(w, r, target.URL+"/moved?sig=xyz", http.StatusTemporaryRedirect)
	})
	var w actions.Webhook
	err := runHook(t, &w, testJob, map[string]any{"url": redirector.URL})
	if class(err) != "permanent" || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), "follow_redirects") {
		t.Errorf("not following: %v", err)
	}
	if strings.Contains(err.Error(), "xyz") {
		t.Errorf("query of the Location leaked: %v", err)
	}
	if n := len(target.requests()); n != 0 {
		t.Fatalf("redirect followed: %d requests at the target", n)
	}
	if err := runHook(t, &w, testJob, map[string]any{"url": redirector.URL, "follow_redirects": true, "secret": "s"}); err != nil {
		t.Fatalf("following: %v", err)
	}
	got := target.requests()
	if len(got) != 1 || got[0].Method != "POST" || got[0].Header.Get(actions.HeaderDelivery) != "job-42" || len(got[0].Body) == 0 {
		t.Errorf("redirected request %+v", got)
	}
	err = runHook(t, &w, testJob, map[string]any{"url": redirector.URL + "/loop", "follow_redirects": true})
	if class(err) != "permanent" || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("loop: %v", err)
	}
}

func TestWebhookSizeLimits(t *testing.T) {
	const huge = 8 << 20
	srv := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			w.Write([]byte(strings.Repeat("x", huge)))
		case "/some":
			w.Write([]byte(strings.Repeat("y", 32<<10)))
		}
	})
	var w actions.Webhook

	// A request body over the limit (rendered, so Check did not see it).
	p, err := w.Spec().Check(map[string]any{"url": srv.URL, "body": actions.Deferred{}})
	if err != nil {
		t.Fatal(err)
	}
	p["body"] = map[string]any{"blob": strings.Repeat("z", actions.MaxWebhookBody)}
	if err := w.Do(context.Background(), testJob, p); class(err) != "permanent" || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized body: %v", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("oversized body was sent")
	}

	// Responses: small ones are read whole and the connection reused; a
	// huge one is cut off and the request still succeeds.
	for range 3 {
		if err := runHook(t, &w, testJob, map[string]any{"url": srv.URL + "/some"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for three requests with 32 KiB replies, want 1", n)
	}
	if err := runHook(t, &w, testJob, map[string]any{"url": srv.URL + "/huge"}); err != nil {
		t.Errorf("huge 200 reply: %v", err)
	}
}

func TestWebhookTimeoutAndNetwork(t *testing.T) {
	srv := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	var w actions.Webhook
	start := time.Now()
	err := runHook(t, &w, testJob, map[string]any{"url": srv.URL, "timeout": "100ms"})
	if class(err) != "transient 0s" || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("timeout: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if err := runHook(t, &w, testJob, map[string]any{"url": "http://" + dead + "/x"}); class(err) != "transient 0s" {
		t.Errorf("connection refused: %v", err)
	}

	// A cancelled worker context is transient too (the job goes back).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, _ := w.Spec().Check(map[string]any{"url": srv.URL})
	if err := w.Do(ctx, testJob, p); class(err) != "transient 0s" {
		t.Errorf("cancelled: %v", err)
	}
}

func TestWebhookRenderedURL(t *testing.T) {
	var w actions.Webhook
	p, err := w.Spec().Check(map[string]any{"url": actions.Deferred{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ftp://h/x", "", "not a url", "http://[::1"} {
		p["url"] = u
		if err := w.Do(context.Background(), testJob, p); class(err) != "permanent" {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestWebhookSecretsStayOut(t *testing.T) {
	const token, password, secret = "tok-SECRET-123", "pw-SECRET-456", "hmac-SECRET-789"
	srv := newHookServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "denied", http.StatusForbidden)
	})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	var w actions.Webhook
	var msgs []string
	for _, base := range []string{srv.URL, "http://" + dead} {
		u := strings.Replace(base, "http://", "http://user:"+password+"@", 1) + "/h?token=" + token
		err := runHook(t, &w, testJob, map[string]any{"url": u, "secret": secret, "headers": map[string]any{"Authorization": "Bearer " + token}})
		if err == nil {
			t.Fatalf("%s: no error", base)
		}
		msgs = append(msgs, err.Error())
	}
	_, err := w.Spec().Check(map[string]any{"url": "http://[::1?token=" + token})
	msgs = append(msgs, err.Error())
	for _, m := range msgs {
		for _, s := range []string{token, password, secret} {
			if strings.Contains(m, s) {
				t.Errorf("%q leaks %q", m, s)
			}
		}
	}
	if !strings.Contains(msgs[0], "/h?…") {
		t.Errorf("message %q does not name the URL", msgs[0])
	}
	t.Logf("messages: %q", msgs)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"-5":                            0,
		" 30 ":                          30 * time.Second,
		"99999999999999999999":          0, // not an int64: not a date either
		"Fri, 02 Jan 2026 03:05:05 GMT": time.Minute,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0, // past
		"tomorrow":                      0,
	} {
		if got := actions.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func BenchmarkWebhookDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var w actions.Webhook
	p, err := w.Spec().Check(map[string]any{"url": srv.URL, "secret": "s"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Do(context.Background(), testJob, p); err != nil {
			b.Fatal(err)
		}
	}
}
