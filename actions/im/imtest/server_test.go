package imtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// rawClient sends hand-made requests, to test that the fake catches what a
// broken client would do.
type rawClient struct {
	t      *testing.T
	srv    *imtest.Server
	random atomic.Uint32
}

func (c *rawClient) query(mod func(url.Values)) string {
	sig, err := im.GenUserSig(imtest.DefaultSDKAppID, imtest.DefaultSecretKey, imtest.DefaultAdmin, time.Hour, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	q := url.Values{
		"sdkappid": {fmt.Sprint(imtest.DefaultSDKAppID)}, "identifier": {imtest.DefaultAdmin},
		"usersig": {sig}, "random": {fmt.Sprint(c.random.Add(1))}, "contenttype": {"json"},
	}
	if mod != nil {
		mod(q)
	}
	return q.Encode()
}

// send returns the envelope's ErrorCode, or -1 when there is none. It
// may run in its own goroutine, so it reports with Errorf.
func (c *rawClient) send(method, path, rawQuery, body string) int {
	req, err := http.NewRequest(method, c.srv.URL+path+"?"+rawQuery, strings.NewReader(body))
	if err != nil {
		c.t.Error(err)
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Error(err)
		return -1
	}
	defer resp.Body.Close()
	var env struct {
		ActionStatus string
		ErrorCode    int
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		c.t.Error(err)
		return -1
	}
	if (env.ErrorCode == 0) != (env.ActionStatus == "OK") {
		c.t.Errorf("envelope %+v", env)
	}
	return env.ErrorCode
}

const validMsg = `{"To_Account":"alice","MsgRandom":1,"MsgSeq":2,"SyncOtherMachine":2,` +
	`"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`

func TestServerCatchesViolations(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := imtest.NewServer(t, imtest.Options{OnViolation: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	}})
	c := &rawClient{t: t, srv: srv}
	cases := []struct {
		name, method, path, query, body string
		want                            string // in the violation
	}{
		{"GET", "GET", "/v4/openim/sendmsg", c.query(nil), validMsg, "method GET"},
		{"path", "POST", "/v4/sendmsg", c.query(nil), validMsg, "path"},
		{"no random", "POST", "/v4/openim/sendmsg", c.query(func(q url.Values) { q.Del("random") }), validMsg, "random missing"},
		{"random too big", "POST", "/v4/openim/sendmsg", c.query(func(q url.Values) { q.Set("random", "4294967296") }), validMsg, "32-bit"},
		{"random reused", "POST", "/v4/sns/friend_get", c.query(func(q url.Values) { q.Set("random", "999") }), "{}", "repeats"},
		{"contenttype", "POST", "/v4/openim/sendmsg", c.query(func(q url.Values) { q.Set("contenttype", "JSON") }), validMsg, "contenttype"},
		{"extra param", "POST", "/v4/sns/friend_get", c.query(func(q url.Values) { q.Set("Random", "5") }), "{}", "unexpected query"},
		{"garbage sig", "POST", "/v4/openim/sendmsg", c.query(func(q url.Values) { q.Set("usersig", "abc") }), validMsg, "usersig"},
		{"empty body", "POST", "/v4/openim/sendmsg", c.query(nil), "", "empty body"},
		{"array body", "POST", "/v4/sns/friend_get", c.query(nil), "[]", "not a JSON object"},
		{"MsgRandom string", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"MsgRandom":1`, `"MsgRandom":"1"`, 1), "MsgRandom"},
		{"MsgSeq float", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"MsgSeq":2`, `"MsgSeq":2.5`, 1), "MsgSeq"},
		{"To_Account number", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"alice"`, `7`, 1), "To_Account"},
		{"typo", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"MsgSeq"`, `"MsgSequence"`, 1), "unknown field"},
		{"SyncOtherMachine 0", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"SyncOtherMachine":2`, `"SyncOtherMachine":0`, 1), "SyncOtherMachine"},
		{"text field", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"Text"`, `"text"`, 1), "Text"},
		{"elem type", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `TIMTextElem`, `TIMText`, 1), "MsgType"},
		{"two customs", "POST", "/v4/openim/sendmsg", c.query(nil), `{"To_Account":"a","MsgRandom":1,"MsgBody":[` +
			`{"MsgType":"TIMCustomElem","MsgContent":{"Data":"x"}},{"MsgType":"TIMCustomElem","MsgContent":{"Data":"y"}}]}`, "one message"},
		{"control", "POST", "/v4/openim/sendmsg", c.query(nil), strings.Replace(validMsg, `"SyncOtherMachine":2`, `"SyncOtherMachine":2,"SendMsgControl":["NoUnRead"]`, 1), "SendMsgControl"},
	}
	// The two cases on friend_get are flagged but otherwise served.
	c.send("POST", "/v4/sns/friend_get", c.query(func(q url.Values) { q.Set("random", "999") }), "{}")
	for _, tc := range cases {
		mu.Lock()
		got = nil
		mu.Unlock()
		if code := c.send(tc.method, tc.path, tc.query, tc.body); code == 0 && tc.path == "/v4/openim/sendmsg" {
			t.Errorf("%s: answered OK", tc.name)
		}
		mu.Lock()
		if all := strings.Join(got, "\n"); !strings.Contains(all, tc.want) {
			t.Errorf("%s: violations %q, want one containing %q", tc.name, all, tc.want)
		}
		mu.Unlock()
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages delivered from bad requests", n)
	}
}

func TestServerAnswersLikeIM(t *testing.T) {
	now := time.Now()
	var clockNs atomic.Int64
	clockNs.Store(now.UnixNano())
	clock := func() time.Time { return time.Unix(0, clockNs.Load()) }
	srv := imtest.NewServer(t, imtest.Options{Clock: clock})
	c := &rawClient{t: t, srv: srv}
	answersSemanticErrors(t, c, now)

	// Dedup: the same sender, MsgSeq, MsgRandom and content within 120 s.
	for range 2 {
		if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), validMsg); got != 0 {
			t.Fatalf("code %d", got)
		}
	}
	other := strings.Replace(validMsg, `"hi"`, `"hello"`, 1)
	if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), other); got != 0 {
		t.Fatalf("code %d", got)
	}
	if n, d := len(srv.Messages()), srv.Duplicates(); n != 2 || d != 1 {
		t.Errorf("%d messages, %d duplicates; want 2, 1", n, d)
	}
	clockNs.Add(int64(imtest.DedupWindow + time.Second))
	if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), validMsg); got != 0 {
		t.Fatalf("code %d", got)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages after the window, want 3", len(msgs))
	}
	if m := msgs[0]; m.To != "alice" || m.Text != "hi" || m.MsgRandom != 1 || m.MsgSeq != 2 || m.SyncOtherMachine != 2 || m.From != "" || m.MsgKey == "" {
		t.Errorf("message %+v", m)
	}
	answersScripted(t, c, other)
}

// answersSemanticErrors: semantic errors are IM's codes, not violations.
func answersSemanticErrors(t *testing.T, c *rawClient, now time.Time) {
	t.Helper()
	for name, tc := range map[string]struct {
		mod  func(url.Values)
		want int
	}{
		"other app": {func(q url.Values) { q.Set("sdkappid", "1400000001") }, 60006},
		"not admin": {func(q url.Values) { q.Set("identifier", "bob") }, 60010},
		"wrong key": {func(q url.Values) {
			s, _ := im.GenUserSig(imtest.DefaultSDKAppID, "x", imtest.DefaultAdmin, time.Hour, now)
			q.Set("usersig", s)
		}, 70009},
		"expired sig": {func(q url.Values) {
			s, _ := im.GenUserSig(imtest.DefaultSDKAppID, imtest.DefaultSecretKey, imtest.DefaultAdmin, time.Hour, now.Add(-2*time.Hour))
			q.Set("usersig", s)
		}, 70001},
	} {
		if got := c.send("POST", "/v4/openim/sendmsg", c.query(tc.mod), validMsg); got != tc.want {
			t.Errorf("%s: code %d, want %d", name, got, tc.want)
		}
	}
	big := strings.Replace(validMsg, `"hi"`, `"`+strings.Repeat("x", imtest.MaxContent+1)+`"`, 1)
	if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), big); got != 93000 {
		t.Errorf("oversized: %d", got)
	}
	long := strings.Replace(validMsg, `"MsgSeq":2`, `"MsgSeq":2,"MsgLifeTime":604801`, 1)
	if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), long); got != 90026 {
		t.Errorf("MsgLifeTime: %d", got)
	}
}

// answersScripted: scripted replies come first, in order.
func answersScripted(t *testing.T, c *rawClient, other string) {
	t.Helper()
	srv := c.srv
	srv.Script(imtest.Reply{HTTPStatus: 502}, imtest.Reply{ErrorCode: 20004})
	req, _ := http.NewRequest("POST", srv.URL+"/v4/openim/sendmsg?"+c.query(nil), strings.NewReader(validMsg))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if got := c.send("POST", "/v4/openim/sendmsg", c.query(nil), other); got != 20004 {
		t.Errorf("code %d", got)
	}
}

func TestWaitMessages(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := &rawClient{t: t, srv: srv}
	go c.send("POST", "/v4/openim/sendmsg", c.query(nil), validMsg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if msgs, err := srv.WaitMessages(ctx, 1); err != nil || len(msgs) != 1 {
		t.Fatalf("%d, %v", len(msgs), err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := srv.WaitMessages(short, 2); err == nil {
		t.Fatal("no error waiting for a message that never comes")
	}
}
