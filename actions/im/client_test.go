package im_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// syncBuffer is a log sink tests read after the writers are done.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newClient returns a client of srv, with cfg adjusted by mods.
func newClient(t testing.TB, srv *imtest.Server, mods ...func(*im.Config)) *im.Client {
	t.Helper()
	cfg := srv.Config()
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, m := range mods {
		m(&cfg)
	}
	c, err := im.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tickingClock advances a second on every reading, so each UserSig it
// issues differs from the last.
func tickingClock(start time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }
}

func TestResolveEndpoint(t *testing.T) {
	good := map[string]string{
		"":                                    "https://console.tim.qq.com",
		"china":                               "https://console.tim.qq.com",
		"Singapore":                           "https://adminapisgp.im.qcloud.com",
		"seoul":                               "https://adminapikr.im.qcloud.com",
		"tokyo":                               "https://adminapijpn.im.qcloud.com",
		"frankfurt":                           "https://adminapiger.im.qcloud.com",
		"mumbai":                              "https://adminapiind.im.qcloud.com",
		"usa":                                 "https://adminapiusa.im.qcloud.com",
		" jakarta ":                           "https://adminapiidn.im.qcloud.com",
		"https://console.tim.qq.com/":         "https://console.tim.qq.com",
		"https://adminapi.my-imcloud.com":     "https://adminapi.my-imcloud.com",
		"https://gateway.internal:8443/tim//": "https://gateway.internal:8443/tim",
		"http://127.0.0.1:8081":               "http://127.0.0.1:8081",
		"http://[::1]:8081":                   "http://[::1]:8081",
		"http://localhost:8081":               "http://localhost:8081",
	}
	for in, want := range good {
		got, err := im.ResolveEndpoint(in)
		if err != nil || got != want {
			t.Errorf("ResolveEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"mars",                               // no such region
		"http://console.tim.qq.com",          // plain http off loopback
		"ftp://127.0.0.1",                    // scheme
		"https://",                           // no host
		"https://h/x?sdkappid=1",             // query
		"https://user:pw@console.tim.qq.com", // user info
		"https://console.tim.qq.com/#frag",   // fragment
	} {
		if got, err := im.ResolveEndpoint(in); err == nil {
			t.Errorf("ResolveEndpoint(%q) = %q, want an error", in, got)
		}
	}
}

func TestNewClientValidates(t *testing.T) {
	base := im.Config{SDKAppID: 1, SecretKey: "k"}
	for name, mod := range map[string]func(*im.Config){
		"no app":     func(c *im.Config) { c.SDKAppID = 0 },
		"no key":     func(c *im.Config) { c.SecretKey = "" },
		"bad region": func(c *im.Config) { c.Endpoint = "atlantis" },
	} {
		cfg := base
		mod(&cfg)
		if _, err := im.NewClient(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := im.NewClient(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin() != "administrator" || c.Endpoint() != "https://console.tim.qq.com" {
		t.Errorf("defaults: admin %q endpoint %q", c.Admin(), c.Endpoint())
	}
}

func TestCallSuccess(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv)
	var out struct {
		ActionStatus string
		MsgKey       string
	}
	body := map[string]any{"To_Account": "alice", "MsgRandom": 7, "MsgBody": []any{
		map[string]any{"MsgType": "TIMTextElem", "MsgContent": map[string]any{"Text": "<hi> & welcome"}},
	}}
	for range 3 {
		if err := c.Call(context.Background(), "openim/sendmsg", body, &out); err != nil {
			t.Fatal(err)
		}
	}
	if out.ActionStatus != "OK" || out.MsgKey == "" {
		t.Errorf("out = %+v", out)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[0].Random == reqs[1].Random || reqs[1].Random == reqs[2].Random {
		t.Errorf("random repeated: %d %d %d", reqs[0].Random, reqs[1].Random, reqs[2].Random)
	}
	if !bytes.Contains(reqs[0].Body, []byte(`"<hi> & welcome"`)) {
		t.Errorf("body %s: text not sent as written", reqs[0].Body)
	}
	// One message: the other two were the same MsgRandom within 120 s.
	if n := len(srv.Messages()); n != 1 || srv.Duplicates() != 2 {
		t.Errorf("%d messages, %d duplicates", n, srv.Duplicates())
	}
	// Other APIs and path spellings.
	for _, p := range []string{"sns/friend_check", "/v4/sns/friend_check", "v4/sns/friend_check"} {
		if err := c.Call(context.Background(), p, nil, nil); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if last := srv.Requests()[5]; last.Path != "/v4/sns/friend_check" || string(last.Body) != "{}" {
		t.Errorf("last request %s %s", last.Path, last.Body)
	}
}

func TestCallBadPath(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv)
	for _, p := range []string{"", "sendmsg", "openim/send/msg", "../x/y", "openim/send msg"} {
		err := c.Call(context.Background(), p, nil, nil)
		if perm, _ := actions.Classify(err); err == nil || !perm {
			t.Errorf("%q: %v, want a permanent error", p, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// classOf returns err's class for table tests.
func classOf(err error) string {
	if err == nil {
		return "ok"
	}
	perm, after := actions.Classify(err)
	if perm {
		return "permanent"
	}
	return fmt.Sprintf("transient %v", after)
}

func TestCallErrorClasses(t *testing.T) {
	tests := []struct {
		reply imtest.Reply
		want  string
	}{
		{imtest.Reply{HTTPStatus: 502}, "transient 0s"},
		{imtest.Reply{HTTPStatus: 503, RetryAfter: "7"}, "transient 7s"},
		{imtest.Reply{HTTPStatus: 429}, "transient 0s"},
		{imtest.Reply{HTTPStatus: 404}, "permanent"},
		{imtest.Reply{HTTPStatus: 403}, "permanent"},
		{imtest.Reply{ErrorCode: 20004}, "transient 0s"},
		{imtest.Reply{ErrorCode: 20005}, "transient 0s"},
		{imtest.Reply{ErrorCode: 60008}, "transient 0s"},
		{imtest.Reply{ErrorCode: 60014}, "transient 0s"},
		{imtest.Reply{ErrorCode: 70169}, "transient 0s"},
		{imtest.Reply{ErrorCode: 70202}, "transient 0s"},
		{imtest.Reply{ErrorCode: 70500}, "transient 0s"},
		{imtest.Reply{ErrorCode: 90992}, "transient 0s"},
		{imtest.Reply{ErrorCode: 90994}, "transient 0s"},
		{imtest.Reply{ErrorCode: 90995}, "transient 0s"},
		{imtest.Reply{ErrorCode: 91000}, "transient 0s"},
		{imtest.Reply{ErrorCode: 60007}, "transient 1s"},
		{imtest.Reply{ErrorCode: 60011}, "transient 1s"},
		{imtest.Reply{ErrorCode: 60018}, "transient 1s"},
		{imtest.Reply{ErrorCode: 60019}, "transient 1s"},
		{imtest.Reply{ErrorCode: 70050}, "transient 1m0s"},
		{imtest.Reply{ErrorCode: 20001}, "permanent"},
		{imtest.Reply{ErrorCode: 20003}, "permanent"},
		{imtest.Reply{ErrorCode: 20006}, "permanent"},
		{imtest.Reply{ErrorCode: 20007}, "permanent"},
		{imtest.Reply{ErrorCode: 20012}, "permanent"},
		{imtest.Reply{ErrorCode: 60004}, "permanent"},
		{imtest.Reply{ErrorCode: 60006}, "permanent"},
		{imtest.Reply{ErrorCode: 60021}, "permanent"},
		{imtest.Reply{ErrorCode: 70003}, "permanent"},
		{imtest.Reply{ErrorCode: 70009}, "permanent"},
		{imtest.Reply{ErrorCode: 80001}, "permanent"},
		{imtest.Reply{ErrorCode: 80003}, "permanent"},
		{imtest.Reply{ErrorCode: 90008}, "permanent"},
		{imtest.Reply{ErrorCode: 90026}, "permanent"},
		{imtest.Reply{ErrorCode: 93000}, "permanent"},
		{imtest.Reply{ErrorCode: 120001}, "permanent"},
		{imtest.Reply{ErrorCode: 4242}, "permanent"}, // undocumented
	}
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv)
	for _, tt := range tests {
		srv.Script(tt.reply)
		err := c.Call(context.Background(), "sns/friend_check", nil, nil)
		if got := classOf(err); got != tt.want {
			t.Errorf("%+v: %s (%v), want %s", tt.reply, got, err, tt.want)
			continue
		}
		var apiErr *im.Error
		if !errors.As(err, &apiErr) {
			t.Errorf("%+v: %v is not an *im.Error", tt.reply, err)
			continue
		}
		if tt.reply.ErrorCode != 0 && (apiErr.Code != tt.reply.ErrorCode || apiErr.HTTPStatus != 200) {
			t.Errorf("%+v: %+v", tt.reply, apiErr)
		}
		if tt.reply.HTTPStatus != 0 && (apiErr.HTTPStatus != tt.reply.HTTPStatus || apiErr.Code != 0) {
			t.Errorf("%+v: %+v", tt.reply, apiErr)
		}
	}
}

func TestCallRetryAfterDate(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv)
	srv.Script(imtest.Reply{HTTPStatus: 503, RetryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)})
	perm, after := actions.Classify(c.Call(context.Background(), "sns/friend_check", nil, nil))
	if perm || after < 80*time.Second || after > 90*time.Second {
		t.Errorf("permanent %v, retry after %v; want ~90s", perm, after)
	}
}

func TestCallResignsOnce(t *testing.T) {
	for _, code := range []int{70001, 20002} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := imtest.NewServer(t, imtest.Options{})
			var logs syncBuffer
			c := newClient(t, srv, func(cfg *im.Config) {
				cfg.Clock = tickingClock(time.Now())
				cfg.Logger = debugLogger(&logs)
			})
			if err := c.Call(context.Background(), "sns/friend_check", nil, nil); err != nil {
				t.Fatal(err)
			}
			srv.Script(imtest.Reply{ErrorCode: code, ErrorInfo: "sig rejected"})
			if err := c.Call(context.Background(), "sns/friend_check", nil, nil); err != nil {
				t.Fatalf("not recovered within the call: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			if reqs[1].UserSig != reqs[0].UserSig {
				t.Error("the cached sig was not used before the rejection")
			}
			if reqs[2].UserSig == reqs[1].UserSig {
				t.Error("repeated with the rejected sig")
			}
			if reqs[2].ErrorCode != 0 {
				t.Errorf("renewed sig refused: %d", reqs[2].ErrorCode)
			}
			if !strings.Contains(logs.String(), "signing again") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
			// And the renewed sig is cached from then on.
			if err := c.Call(context.Background(), "sns/friend_check", nil, nil); err != nil {
				t.Fatal(err)
			}
			if reqs := srv.Requests(); reqs[3].UserSig != reqs[2].UserSig {
				t.Error("renewed sig not cached")
			}
		})
	}
}

func TestCallResignFailsPermanently(t *testing.T) {
	// The client's clock is a year behind: every sig it makes has expired
	// by the server's clock. One renewal, then a permanent error.
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) {
		cfg.Clock = func() time.Time { return time.Now().AddDate(-1, 0, 0) }
	})
	err := c.Call(context.Background(), "sns/friend_check", nil, nil)
	if got := classOf(err); got != "permanent" {
		t.Fatalf("%s: %v", got, err)
	}
	if !strings.Contains(err.Error(), "clock") {
		t.Errorf("error does not hint at the cause: %v", err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestCallWrongKeyIsPermanent(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) { cfg.SecretKey = "not-the-key" })
	err := c.Call(context.Background(), "sns/friend_check", nil, nil)
	var apiErr *im.Error
	if classOf(err) != "permanent" || !errors.As(err, &apiErr) || apiErr.Code != 70009 {
		t.Fatalf("%v", err)
	}
}

func TestCallTimeoutIsTransient(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) { cfg.Timeout = 100 * time.Millisecond })
	srv.Script(imtest.Reply{Delay: 10 * time.Second})
	start := time.Now()
	err := c.Call(context.Background(), "sns/friend_check", nil, nil)
	if classOf(err) != "transient 0s" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Errorf("error %q does not say it timed out", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

func TestCallNotAnEnvelope(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v4/a/html":
			fmt.Fprint(w, "<html>proxy login</html>")
		case "/v4/a/redirect":
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		case "/v4/a/empty":
			fmt.Fprint(w, "{}")
		}
	}))
	defer hs.Close()
	c, err := im.NewClient(im.Config{Endpoint: hs.URL, SDKAppID: 1, SecretKey: "k", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"a/html": "transient 0s", "a/empty": "transient 0s", "a/redirect": "permanent"} {
		if got := classOf(c.Call(context.Background(), path, nil, nil)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

func TestCallKeepsConnectionsAlive(t *testing.T) {
	var conns atomic.Int32
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	}))
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	hs.Start()
	defer hs.Close()
	c, err := im.NewClient(im.Config{Endpoint: hs.URL, SDKAppID: 1, SecretKey: "k", Rate: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := c.Call(context.Background(), "a/b", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential calls, want 1", n)
	}
}

// TestCallRateLimit checks the limit with bounds that scheduling delays
// cannot break: a request is received after the limiter lets it go, so the
// k-th request received comes no sooner than the k-th token.
func TestCallRateLimit(t *testing.T) {
	const rate, calls, burst = 40, 22, 2 // burst is 2 at 40/s
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) { cfg.Rate = rate })
	start := time.Now()
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			if err := c.Call(context.Background(), "sns/friend_check", nil, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	reqs := srv.Requests()
	if len(reqs) != calls {
		t.Fatalf("%d requests", len(reqs))
	}
	got := make([]time.Duration, len(reqs))
	for i, r := range reqs {
		got[i] = r.Received.Sub(start)
	}
	slices.Sort(got)
	for k, at := range got {
		// Token k+1 is there (k+1-burst)/rate after the start at the soonest.
		if want := time.Duration(float64(k+1-burst) / rate * float64(time.Second)); at < want-time.Millisecond {
			t.Errorf("request %d received %v after the start, before its token at %v (%d/s, burst %d)", k+1, at, want, rate, burst)
		}
	}
}

func TestCallRateWaitRespectsContext(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) { cfg.Rate = 0.5 }) // one token per 2 s, burst 1
	if err := c.Call(context.Background(), "sns/friend_check", nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Call(ctx, "sns/friend_check", nil, nil)
	if classOf(err) != "transient 0s" {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("waited %v past a 100ms deadline", took)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

// TestSecretsNeverLeak drives every failure path with debug logging on and
// looks for the secret key and every usersig sent in errors and logs.
func TestSecretsNeverLeak(t *testing.T) {
	const key = "s3cr3t-key-that-must-not-leak"
	var logs syncBuffer
	srv := imtest.NewServer(t, imtest.Options{SecretKey: key})
	// An echo server that puts the request URL (with the usersig) into
	// bodies and ErrorInfo.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/status") {
			http.Error(w, "bad gateway for "+r.URL.String(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, `{"ActionStatus":"FAIL","ErrorCode":90001,"ErrorInfo":"cannot parse %s"}`, r.URL.RawQuery)
	}))
	defer echo.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	mk := func(endpoint string, timeout time.Duration) *im.Client {
		return newClient(t, srv, func(cfg *im.Config) {
			cfg.Endpoint = endpoint
			cfg.SecretKey = key
			cfg.Timeout = timeout
			cfg.Logger = debugLogger(&logs)
		})
	}
	var errs []error
	fake := mk(srv.URL, 100*time.Millisecond)
	srv.Script(imtest.Reply{HTTPStatus: 502}, imtest.Reply{ErrorCode: 70001}, imtest.Reply{}, imtest.Reply{Delay: time.Second})
	for range 3 {
		errs = append(errs, fake.Call(context.Background(), "sns/friend_check", nil, nil))
	}
	errs = append(errs,
		mk(echo.URL, time.Second).Call(context.Background(), "a/status", nil, nil),
		mk(echo.URL, time.Second).Call(context.Background(), "a/envelope", nil, nil),
		mk("http://"+deadAddr, time.Second).Call(context.Background(), "a/b", nil, nil),
	)

	var sigs []string
	for _, r := range srv.Requests() {
		sigs = append(sigs, r.UserSig)
	}
	sig, _ := im.GenUserSig(imtest.DefaultSDKAppID, key, imtest.DefaultAdmin, im.DefaultSigExpire, time.Now())
	sigs = append(sigs, sig)

	var all strings.Builder
	for i, err := range errs {
		if i != 1 && err == nil { // the 70001 is renewed and succeeds
			t.Errorf("call %d: no error", i)
		}
		if err != nil {
			all.WriteString(err.Error() + "\n")
		}
	}
	all.WriteString(logs.String())
	text := all.String()
	if strings.Contains(text, key) {
		t.Errorf("secret key leaked:\n%s", text)
	}
	for _, s := range append(sigs, sigs[0][:24]) {
		if strings.Contains(text, s) {
			t.Errorf("usersig %.16s… leaked:\n%s", s, text)
		}
	}
	if !strings.Contains(text, "usersig=REDACTED") {
		t.Errorf("expected the masked URL of the network error in:\n%s", text)
	}
	t.Logf("errors and logs checked:\n%s", text)
}
