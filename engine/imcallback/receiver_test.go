package imcallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

func TestSignDocExample(t *testing.T) {
	// The official example of the callback authentication page.
	const want = "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
	if got := Sign([]byte("xxxxyyyy"), "1669872112"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !ValidSign([]byte("xxxxyyyy"), "1669872112", want) {
		t.Fatal("doc example rejected")
	}
	if !ValidSign([]byte("xxxxyyyy"), "1669872112", strings.ToUpper(want)) {
		t.Fatal("upper-case hex rejected")
	}
	// The older page's typo'd token must not verify.
	if ValidSign([]byte("xxxyyy"), "1669872112", want) {
		t.Fatal("wrong token accepted")
	}
	if ValidSign([]byte("xxxxyyyy"), "1669872112", want[:63]) {
		t.Fatal("truncated sign accepted")
	}
}

// recorder is a Handler that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	cbs []*Callback
	err error
}

func (r *recorder) Handle(ctx context.Context, cb *Callback) (Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return Reply{}, r.err
	}
	r.cbs = append(r.cbs, cb)
	return AllowAll(cb), nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cbs)
}

type observed struct{ command, result, reason string }

type fixture struct {
	srv     *httptest.Server
	h       *recorder
	logs    *syncBuffer
	mu      sync.Mutex
	results []observed
	now     time.Time
}

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

const (
	testAppID = 1400000000
	testToken = "s3cr3t-callback-token"
)

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with the receiver changed by edit first.
func newFixtureWith(t *testing.T, edit func(*Receiver)) *fixture {
	f := &fixture{h: &recorder{}, logs: &syncBuffer{}, now: time.Unix(1764072000, 0)}
	rc := &Receiver{
		SdkAppid: testAppID,
		Token:    []byte(testToken),
		Handler:  f.h,
		Logger:   slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      func() time.Time { return f.now },
		Observe: func(command, result, reason string, _ time.Duration) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.results = append(f.results, observed{command, result, reason})
		},
	}
	if edit != nil {
		edit(rc)
	}
	mux := http.NewServeMux()
	mux.Handle("/callback", rc)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) last() observed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.results[len(f.results)-1]
}

// query builds a callback query as Tencent does, signed at f.now.
func (f *fixture) query(cmd string) url.Values {
	rt := strconv.FormatInt(f.now.Unix(), 10)
	return url.Values{
		"SdkAppid": {strconv.Itoa(testAppID)}, "CallbackCommand": {cmd}, "contenttype": {"json"},
		"ClientIP": {"10.0.0.1"}, "OptPlatform": {"iOS"}, "RequestTime": {rt}, "Sign": {Sign([]byte(testToken), rt)},
	}
}

func (f *fixture) post(t *testing.T, method string, q url.Values, body string) (int, Reply) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+"/callback?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	var r Reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply is not JSON: %q", raw)
	}
	return resp.StatusCode, r
}

func TestReceiverAccepts(t *testing.T) {
	f := newFixture(t)
	status, r := f.post(t, http.MethodPost, f.query(imevent.CmdFriendAdd), string(callbacks.Must("friend_add.json")))
	if status != 200 || r.ActionStatus != "OK" || r.ErrorCode != 0 || r.ErrorInfo != "" || r.ResultItem != nil {
		t.Fatalf("got %d %+v", status, r)
	}
	if f.h.count() != 1 {
		t.Fatal("handler not called")
	}
	cb := f.h.cbs[0]
	if len(cb.Events) != 3 || cb.SdkAppid != testAppID || cb.ClientIP != "10.0.0.1" || cb.OptPlatform != "iOS" || cb.ID == "" {
		t.Fatalf("callback %+v", cb)
	}
	if e := cb.Events[0]; e.SdkAppid != testAppID || e.ClientIP != "10.0.0.1" || e.EventTime != int(f.now.UnixMilli()) {
		t.Fatalf("event %+v", e)
	}
	if got := f.last(); got != (observed{imevent.CmdFriendAdd, ResultOK, ""}) {
		t.Fatalf("observed %+v", got)
	}
	if strings.Contains(f.logs.String(), testToken) {
		t.Fatal("token in logs")
	}
}

func TestReceiverExactOKBody(t *testing.T) {
	f := newFixture(t)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/callback?"+f.query(imevent.CmdFriendDelete).Encode(),
		bytes.NewReader(callbacks.Must("friend_delete.json")))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if string(raw) != `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}` {
		t.Fatalf("body %s", raw)
	}
}

func TestReceiverPrevAllowsEveryTarget(t *testing.T) {
	for _, tc := range []struct{ cmd, file string }{
		{imevent.CmdPrevFriendAdd, "prev_friend_add.json"},
		{imevent.CmdPrevFriendResponse, "prev_friend_response.json"},
	} {
		f := newFixture(t)
		status, r := f.post(t, http.MethodPost, f.query(tc.cmd), string(callbacks.Must(tc.file)))
		want := []ResultItem{{To_Account: "id1"}, {To_Account: "id2"}}
		if status != 200 || r.ActionStatus != "OK" || len(r.ResultItem) != 2 || r.ResultItem[0] != want[0] || r.ResultItem[1] != want[1] {
			t.Fatalf("%s: got %d %+v", tc.cmd, status, r)
		}
	}
}

func TestReceiverIgnoresOtherCommands(t *testing.T) {
	f := newFixture(t)
	body := `{"CallbackCommand":"C2C.CallbackBeforeSendMsg","From_Account":"jared","To_Account":"Jonh","MsgBody":[]}`
	status, r := f.post(t, http.MethodPost, f.query("C2C.CallbackBeforeSendMsg"), body)
	if status != 200 || r.ActionStatus != "OK" || r.ErrorCode != 0 {
		t.Fatalf("got %d %+v", status, r)
	}
	if f.h.count() != 0 {
		t.Fatal("an ignored command reached the handler")
	}
	if got := f.last(); got != (observed{"other", ResultIgnored, ""}) {
		t.Fatalf("observed %+v", got)
	}
}

func TestReceiverRejects(t *testing.T) {
	friendAdd := string(callbacks.Must("friend_add.json"))
	tests := []struct {
		name   string
		method string
		query  func(f *fixture) url.Values
		body   string
		status int
		reason string
		info   string
	}{
		{"GET", http.MethodGet, nil, "", 405, ReasonMethod, "POST"},
		{"too large", "", nil, `{"CallbackCommand":"Sns.CallbackFriendAdd","x":"` + strings.Repeat("a", DefaultMaxPairs*PairBytes) + `"}`, 413, ReasonTooLarge, "larger than"},
		{"malformed", "", nil, `{"CallbackCommand":"Sns.CallbackFriendAdd",`, 400, ReasonMalformed, "malformed JSON"},
		{"command mismatch", "", nil, strings.Replace(friendAdd, "Sns.CallbackFriendAdd", "Sns.CallbackFriendDelete", 1), 400, ReasonCommandMismatch, "differs"},
		{"empty pairs", "", nil, `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[]}`, 400, ReasonPairs, "empty"},
		{"too many pairs", "", nil, `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[` +
			strings.TrimSuffix(strings.Repeat(`{"From_Account":"a","To_Account":"b"},`, DefaultMaxPairs+1), ",") + `]}`, 400, ReasonPairs, "more than 6000 (--max-pairs)"},
		{"wrong SdkAppid", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Set("SdkAppid", "1400000001")
			return q
		}, friendAdd, 403, ReasonSdkAppid, "not this app"},
		{"missing SdkAppid", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Del("SdkAppid")
			return q
		}, friendAdd, 403, ReasonSdkAppid, "missing"},
		{"missing Sign", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Del("Sign")
			return q
		}, friendAdd, 401, ReasonSignMissing, "required"},
		{"missing RequestTime", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Del("RequestTime")
			return q
		}, friendAdd, 401, ReasonSignMissing, "required"},
		{"bad Sign", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Set("Sign", Sign([]byte("another-token"), q.Get("RequestTime")))
			return q
		}, friendAdd, 401, ReasonSignBad, "does not match"},
		{"Sign for another time", "", func(f *fixture) url.Values {
			q := f.query(imevent.CmdFriendAdd)
			q.Set("RequestTime", strconv.FormatInt(f.now.Unix()-1, 10))
			return q
		}, friendAdd, 401, ReasonSignBad, "does not match"},
		{"stale", "", func(f *fixture) url.Values {
			rt := strconv.FormatInt(f.now.Unix()-61, 10)
			q := f.query(imevent.CmdFriendAdd)
			q.Set("RequestTime", rt)
			q.Set("Sign", Sign([]byte(testToken), rt))
			return q
		}, friendAdd, 401, ReasonSignStale, "old"},
		{"future", "", func(f *fixture) url.Values {
			rt := strconv.FormatInt(f.now.Unix()+61, 10)
			q := f.query(imevent.CmdFriendAdd)
			q.Set("RequestTime", rt)
			q.Set("Sign", Sign([]byte(testToken), rt))
			return q
		}, friendAdd, 401, ReasonSignFuture, "future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			q := f.query(imevent.CmdFriendAdd)
			if tt.query != nil {
				q = tt.query(f)
			}
			status, r := f.post(t, method, q, tt.body)
			if status != tt.status || r.ActionStatus != "FAIL" || r.ErrorCode != 1 || !strings.Contains(r.ErrorInfo, tt.info) {
				t.Fatalf("got %d %+v, want %d FAIL containing %q", status, r, tt.status, tt.info)
			}
			if f.h.count() != 0 {
				t.Fatal("a rejected callback reached the handler")
			}
			if got := f.last(); got.result != ResultRejected || got.reason != tt.reason {
				t.Fatalf("observed %+v, want rejected/%s", got, tt.reason)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, `"reason":"`+tt.reason+`"`) {
				t.Fatalf("no warn line with the reason: %s", logs)
			}
			if strings.Contains(logs, testToken) || (q.Get("Sign") != "" && strings.Contains(logs, q.Get("Sign"))) {
				t.Fatal("secret material in logs")
			}
		})
	}
}

func TestReceiverStaleWithinSkewAccepted(t *testing.T) {
	f := newFixture(t)
	rt := strconv.FormatInt(f.now.Unix()-60, 10)
	q := f.query(imevent.CmdFriendAdd)
	q.Set("RequestTime", rt)
	q.Set("Sign", Sign([]byte(testToken), rt))
	if status, r := f.post(t, http.MethodPost, q, string(callbacks.Must("friend_add.json"))); status != 200 || r.ActionStatus != "OK" {
		t.Fatalf("got %d %+v", status, r)
	}
}

func TestReceiverHandlerFailure(t *testing.T) {
	f := newFixture(t)
	f.h.err = errors.New("queue unavailable: store closed")
	status, r := f.post(t, http.MethodPost, f.query(imevent.CmdFriendAdd), string(callbacks.Must("friend_add.json")))
	// The caller gets a generic reply with the id to look for in the log,
	// not the store's error.
	if status != http.StatusServiceUnavailable || r.ActionStatus != "FAIL" || r.ErrorCode != 1 ||
		strings.Contains(r.ErrorInfo, "queue unavailable") || !strings.Contains(r.ErrorInfo, "callback_id ") {
		t.Fatalf("got %d %+v", status, r)
	}
	if got := f.last(); got.result != ResultFailed {
		t.Fatalf("observed %+v", got)
	}
}

func TestReceiverWithoutToken(t *testing.T) {
	h := &recorder{}
	rc := &Receiver{SdkAppid: testAppID, Handler: h, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	q := url.Values{"SdkAppid": {strconv.Itoa(testAppID)}, "CallbackCommand": {imevent.CmdFriendAdd}}
	resp, err := http.Post(srv.URL+"?"+q.Encode(), "application/json", bytes.NewReader(callbacks.Must("friend_add.json")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || h.count() != 1 {
		t.Fatalf("status %d, handled %d", resp.StatusCode, h.count())
	}
}

// The precomputed OK body must stay what encoding the OK reply gives.
func TestOKReplyBodyIsEncodedOK(t *testing.T) {
	want, err := json.Marshal(OK())
	if err != nil {
		t.Fatal(err)
	}
	if string(okReplyBody) != string(want) {
		t.Fatalf("okReplyBody = %s, json.Marshal(OK()) = %s", okReplyBody, want)
	}
}

// A Prev callback answered FAIL carries a code in [38000, 39000], as the
// Prev pages ask; an after-callback's FAIL carries 1.
func TestReceiverPrevFailCode(t *testing.T) {
	for _, tt := range []struct {
		cmd, body string
		code      int
	}{
		{imevent.CmdPrevFriendAdd, string(callbacks.Must("prev_friend_add.json")), PrevFailCode},
		{imevent.CmdPrevFriendResponse, string(callbacks.Must("prev_friend_response.json")), PrevFailCode},
		{imevent.CmdFriendAdd, string(callbacks.Must("friend_add.json")), FailCode},
	} {
		f := newFixture(t)
		f.h.err = errors.New("queue unavailable")
		status, r := f.post(t, http.MethodPost, f.query(tt.cmd), tt.body)
		if status != http.StatusServiceUnavailable || r.ActionStatus != "FAIL" || r.ErrorCode != tt.code {
			t.Fatalf("%s: got %d %+v, want FAIL %d", tt.cmd, status, r, tt.code)
		}
		// A rejected Prev callback too.
		status, r = f.post(t, http.MethodPost, f.query(tt.cmd), `{"CallbackCommand":"`+tt.cmd+`",`)
		if status != http.StatusBadRequest || r.ErrorCode != tt.code {
			t.Fatalf("%s rejected: got %d %+v, want FAIL %d", tt.cmd, status, r, tt.code)
		}
	}
	if PrevFailCode < 38000 || PrevFailCode > 39000 {
		t.Fatalf("PrevFailCode %d outside [38000, 39000]", PrevFailCode)
	}
}

// MaxPairs is the receiver's bound: a callback over it is refused whole,
// before the handler (nothing of it stored), and the body limit grows
// with it, so a list of MaxPairs long UserIDs always fits.
func TestReceiverMaxPairs(t *testing.T) {
	pairs := func(n int) string {
		id := strings.Repeat("u", 32) // the longest UserID
		return `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[` + strings.TrimSuffix(strings.Repeat(
			`{"From_Account":"`+id+`","To_Account":"`+id+`","Initiator_Account":"`+id+`"},`, n), ",") + `]}`
	}
	f := newFixtureWith(t, func(rc *Receiver) { rc.MaxPairs = 2 })
	if status, r := f.post(t, http.MethodPost, f.query(imevent.CmdFriendAdd), pairs(3)); status != 400 || !strings.Contains(r.ErrorInfo, "more than 2") {
		t.Fatalf("3 pairs over a bound of 2: %d %+v", status, r)
	}
	if f.h.count() != 0 {
		t.Fatal("a callback over the bound reached the handler")
	}
	if status, r := f.post(t, http.MethodPost, f.query(imevent.CmdFriendAdd), pairs(2)); status != 200 || r.ActionStatus != "OK" {
		t.Fatalf("2 pairs: %d %+v", status, r)
	}
	n := 2 * DefaultMaxBody / 150 // more long pairs than DefaultMaxBody holds
	big := newFixtureWith(t, func(rc *Receiver) { rc.MaxPairs = n })
	if status, r := big.post(t, http.MethodPost, big.query(imevent.CmdFriendAdd), pairs(n)); status != 200 || r.ActionStatus != "OK" {
		t.Fatalf("%d pairs under a bound of %d: %d %+v", n, n, status, r)
	}
}
