package imcallback

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
	"golang.org/x/time/rate"
)

// TestReceiverClosesRejectedConnections: a rejected request gets
// Connection: close and the server closes the connection, so a hostile
// client cannot keep it idle.
func TestReceiverClosesRejectedConnections(t *testing.T) {
	f := newFixture(t)
	q := f.query(imevent.CmdFriendAdd)
	q.Set("Sign", strings.Repeat("0", 64))
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/callback?"+q.Encode(), strings.NewReader("{}"))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d, close %v; want 401 with Connection: close", resp.StatusCode, resp.Close)
	}
	// An accepted callback keeps its connection alive (Tencent reuses it).
	status, _ := f.post(t, http.MethodPost, f.query(imevent.CmdFriendAdd), string(callbacks.Must("friend_add.json")))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
}

// TestReceiverRateLimitsRejectionLogs: beyond the limiter's burst,
// rejections are counted, not logged, and the next line written says how
// many were left out.
func TestReceiverRateLimitsRejectionLogs(t *testing.T) {
	var logs syncBuffer
	var suppressed atomic.Int32
	lim := rate.NewLimiter(0, 3) // three lines, then none until refilled
	rc := &Receiver{SdkAppid: testAppID, Token: []byte(testToken), Handler: &recorder{},
		Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
		RejectLogs: lim, Suppressed: func() { suppressed.Add(1) }}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	for range 50 {
		resp, err := http.Post(srv.URL+"?SdkAppid=1&CallbackCommand=Sns.CallbackFriendAdd", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"callback rejected"`); n != 3 {
		t.Errorf("%d rejection lines, want 3", n)
	}
	if n := suppressed.Load(); n != 47 {
		t.Errorf("%d suppressed, want 47", n)
	}
	lim.SetBurst(1)
	lim.SetLimit(rate.Inf)
	resp, err := http.Post(srv.URL+"?SdkAppid=1", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(logs.String(), `"suppressed_before":47`) {
		t.Errorf("the next line does not say how many were left out:\n%s", logs.String())
	}
}

// TestReceiverCountsUnsigned: without a token every accepted request is
// counted as unsigned; with one, none is.
func TestReceiverCountsUnsigned(t *testing.T) {
	for _, token := range []string{"", testToken} {
		var unsigned atomic.Int32
		rc := &Receiver{SdkAppid: testAppID, Token: []byte(token), Handler: &recorder{},
			Logger: slog.New(slog.DiscardHandler), Unsigned: func() { unsigned.Add(1) }}
		srv := httptest.NewServer(rc)
		q := url.Values{"SdkAppid": {strconv.Itoa(testAppID)}, "CallbackCommand": {imevent.CmdFriendAdd}}
		resp, err := http.Post(srv.URL+"?"+q.Encode(), "application/json", bytes.NewReader(callbacks.Must("friend_add.json")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		want := int32(1)
		if token != "" {
			want = 0 // rejected: no Sign
		}
		if n := unsigned.Load(); n != want {
			t.Errorf("token %q: %d unsigned, want %d", token, n, want)
		}
	}
}

// An event without EventTime takes the request's RequestTime, the same in
// every copy of the request, not the receive time.
func TestEventTimeFallsBackToRequestTime(t *testing.T) {
	f := newFixture(t)
	sent := f.now
	f.now = sent.Add(1500 * time.Millisecond) // received later, within the skew
	q := f.query(imevent.CmdFriendAdd)
	q.Set("RequestTime", strconv.FormatInt(sent.Unix(), 10))
	q.Set("Sign", Sign([]byte(testToken), q.Get("RequestTime")))
	if status, r := f.post(t, http.MethodPost, q, string(callbacks.Must("friend_add.json"))); status != 200 {
		t.Fatalf("status %d %+v", status, r)
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if got := f.h.cbs[0].Events[0].EventTime; got != int(sent.UnixMilli()) {
		t.Fatalf("EventTime %d, want the RequestTime %d", got, sent.UnixMilli())
	}
}
