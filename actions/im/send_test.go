package im_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

func TestSendSpec(t *testing.T) {
	spec := im.NewSend(nil).Spec()
	if spec.Name != "im.send" || spec.Sync {
		t.Fatalf("spec %+v", spec)
	}
	long := strings.Repeat("é", 4001) // 8002 bytes
	good := []map[string]any{
		{"to": "alice", "text": "hi"},
		{"to": actions.Deferred{}, "text": actions.Deferred{}},
		{"to": "alice", "custom": map[string]any{"data": `{"k":1}`, "desc": "d", "ext": "e", "sound": "s"}},
		{"to": "alice", "custom": map[string]any{"data": actions.Deferred{}}},
		{"to": "alice", "text": strings.Repeat("x", im.MaxContent)},
		{"to": "alice", "text": "hi", "msg_lifetime": "24h"},
		{"to": "alice", "text": "hi", "msg_lifetime": 3600},
		{"to": "alice", "text": "hi", "msg_lifetime": "0"},
		{"to": "alice", "text": "hi", "msg_lifetime": "168h"},
		{"to": "alice", "text": "hi", "msg_lifetime": actions.Deferred{}},
		{"to": "alice", "text": "hi", "from": "bot", "sync_other_machine": true, "cloud_custom_data": "x",
			"no_callbacks": false, "no_unread": true, "no_last_msg": true, "push": map[string]any{"title": "t"}},
		{"to": "alice", "text": "hi", "push": map[string]any{"title": "t", "text": strings.Repeat("x", im.MaxPush-1-7), "ext": `{"a":1}`}},
		{"to": "alice", "text": "hi", "push": map[string]any{"ext": actions.Deferred{}}},
		{"to": "alice", "text": "hi", "mute_notifications": true},
		{"to": "alice", "text": "hi", "push": map[string]any{"text": "x"}, "mute_notifications": false},
	}
	for _, p := range good {
		if _, err := spec.Check(p); err != nil {
			t.Errorf("Check(%v): %v", p, err)
		}
	}
	bad := map[string]map[string]any{
		"to":                     {"text": "hi"},
		"must not be empty":      {"to": "", "text": "hi"},
		"one of text":            {"to": "alice"},
		"not both":               {"to": "alice", "text": "hi", "custom": map[string]any{"data": "x"}},
		"text: must not":         {"to": "alice", "text": ""},
		"8000-byte":              {"to": "alice", "text": long},
		"custom: 8":              {"to": "alice", "custom": map[string]any{"data": strings.Repeat("x", 5000), "desc": strings.Repeat("x", 3001)}},
		"custom.data":            {"to": "alice", "custom": map[string]any{"desc": "x"}},
		"custom.title":           {"to": "alice", "custom": map[string]any{"data": "x", "title": "x"}},
		"invalid duration":       {"to": "alice", "text": "hi", "msg_lifetime": "8d"},
		"outside 0 to 7":         {"to": "alice", "text": "hi", "msg_lifetime": "169h"},
		"604800":                 {"to": "alice", "text": "hi", "msg_lifetime": -1},
		"whole":                  {"to": "alice", "text": "hi", "msg_lifetime": 1.5},
		"unknown parameter":      {"to": "alice", "text": "hi", "To_Account": "x"},
		"want bool":              {"to": "alice", "text": "hi", "no_callbacks": "yes"},
		"push.sound":             {"to": "alice", "text": "hi", "push": map[string]any{"sound": "x"}},
		"push.desc":              {"to": "alice", "text": "hi", "push": map[string]any{"desc": "x"}},
		"3072 a push":            {"to": "alice", "text": "hi", "push": map[string]any{"title": "t", "text": strings.Repeat("x", im.MaxPush-1-6), "ext": `{"a":1}`}},
		"push.ext: must be JSON": {"to": "alice", "text": "hi", "push": map[string]any{"ext": "screen=chat"}},
		"either push or mute":    {"to": "alice", "text": "hi", "push": map[string]any{"text": "x"}, "mute_notifications": true},
	}
	for want, p := range bad {
		_, err := spec.Check(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
	// Defaults.
	p, err := spec.Check(map[string]any{"to": "a", "text": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if p["sync_other_machine"] != false || p["no_callbacks"] != true || p["no_unread"] != false || p["no_last_msg"] != false {
		t.Errorf("defaults %v", p)
	}
}

func TestMsgIDs(t *testing.T) {
	r1, s1 := im.MsgIDs("job-1")
	r2, s2 := im.MsgIDs("job-1")
	r3, s3 := im.MsgIDs("job-2")
	if r1 != r2 || s1 != s2 {
		t.Fatal("not deterministic")
	}
	if r1 == r3 && s1 == s3 {
		t.Fatal("two jobs share ids")
	}
	for i := range 1000 {
		r, s := im.MsgIDs(strings.Repeat("j", i))
		if r == 0 || s == 0 || r > 1<<31-1 || s > 1<<31-1 {
			t.Fatalf("MsgIDs = %d, %d: want positive 31-bit values", r, s)
		}
	}
}

// doSend checks params like the loader does and runs the kind.
func doSend(t *testing.T, k *im.Send, jobID string, params map[string]any) error {
	t.Helper()
	p, err := k.Spec().Check(params)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return k.Do(context.Background(), actions.Job{ID: jobID, Rule: "r", Action: "im.send", Params: params}, p)
}

func TestSendText(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewSend(newClient(t, srv))
	if err := doSend(t, k, "job-1", map[string]any{"to": "alice", "text": "Hi alice, <thanks> & welcome!"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	checkTextMessage(t, msgs[0])
}

// checkTextMessage checks TestSendText's message: the text, the ids from
// the job id, and every default.
func checkTextMessage(t *testing.T, m imtest.Message) {
	t.Helper()
	wantRandom, wantSeq := im.MsgIDs("job-1")
	if m.From != "" || m.To != "alice" || m.Text != "Hi alice, <thanks> & welcome!" || m.Custom != nil {
		t.Errorf("message %+v", m)
	}
	if m.MsgRandom != wantRandom || m.MsgSeq != wantSeq {
		t.Errorf("MsgRandom/MsgSeq %d/%d, want %d/%d", m.MsgRandom, m.MsgSeq, wantRandom, wantSeq)
	}
	if m.SyncOtherMachine != 2 || m.MsgLifeTime != nil || m.CloudCustomData != "" || m.OfflinePush != nil || m.SendMsgControl != nil {
		t.Errorf("defaults not as documented: %+v", m)
	}
	if !slices.Equal(m.ForbidCallbackControl, []string{"ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"}) {
		t.Errorf("ForbidCallbackControl %v", m.ForbidCallbackControl)
	}
	if strings.Contains(string(m.Body), "From_Account") {
		t.Errorf("From_Account sent for the admin: %s", m.Body)
	}
}

func TestSendCustomAndOptions(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewSend(newClient(t, srv))
	err := doSend(t, k, "job-2", map[string]any{
		"to": "alice", "from": "welcome_bot",
		"custom":             map[string]any{"data": `{"kind":"welcome"}`, "desc": "Welcome!"},
		"sync_other_machine": true, "cloud_custom_data": `{"rule":"welcome"}`,
		"msg_lifetime": "1h", "no_callbacks": false, "no_unread": true, "no_last_msg": true,
		"push": map[string]any{"title": "New friend", "text": "Say hi", "ext": `{"a":1}`},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.From != "welcome_bot" || m.Custom == nil || m.Custom.Data != `{"kind":"welcome"}` || m.Custom.Desc != "Welcome!" || m.Text != "" {
		t.Errorf("message %+v custom %+v", m, m.Custom)
	}
	checkSendOptions(t, m)
	// msg_lifetime 0 is sent (online only), not omitted.
	if err := doSend(t, k, "job-3", map[string]any{"to": "bob", "text": "x", "msg_lifetime": 0}); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages()[1]; m.MsgLifeTime == nil || *m.MsgLifeTime != 0 {
		t.Errorf("MsgLifeTime %v", m.MsgLifeTime)
	}
}

// checkSendOptions checks TestSendCustomAndOptions's message: every option
// given, each where IM expects it.
func checkSendOptions(t *testing.T, m imtest.Message) {
	t.Helper()
	if m.SyncOtherMachine != 1 || m.CloudCustomData != `{"rule":"welcome"}` || m.MsgLifeTime == nil || *m.MsgLifeTime != 3600 {
		t.Errorf("options %+v", m)
	}
	if m.ForbidCallbackControl != nil || !slices.Equal(m.SendMsgControl, []string{"NoUnread", "NoLastMsg"}) {
		t.Errorf("controls %v %v", m.ForbidCallbackControl, m.SendMsgControl)
	}
	if p := m.OfflinePush; p == nil || p.PushFlag != 0 || p.Title != "New friend" || p.Desc != "Say hi" || p.Ext != `{"a":1}` {
		t.Errorf("push %+v", p)
	}
}

// mute_notifications is OfflinePushInfo.PushFlag 1 and nothing else; a
// message without push or mute_notifications has no OfflinePushInfo, so IM
// pushes the message's own text.
func TestSendMuteNotifications(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewSend(newClient(t, srv))
	if err := doSend(t, k, "job-m", map[string]any{"to": "alice", "text": "hi", "mute_notifications": true}); err != nil {
		t.Fatal(err)
	}
	if err := doSend(t, k, "job-n", map[string]any{"to": "bob", "text": "hi"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if p := msgs[0].OfflinePush; p == nil || p.PushFlag != 1 || p.Title != "" || p.Desc != "" || p.Ext != "" {
		t.Errorf("muted: push %+v", p)
	}
	if !strings.Contains(string(msgs[0].Body), `"OfflinePushInfo":{"PushFlag":1}`) {
		t.Errorf("muted body %s", msgs[0].Body)
	}
	if msgs[1].OfflinePush != nil {
		t.Errorf("default: push %+v", msgs[1].OfflinePush)
	}
}

func TestSendRetryIsTheSameMessage(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewSend(newClient(t, srv, func(cfg *im.Config) { cfg.Timeout = 200 * time.Millisecond }))
	params := map[string]any{"to": "alice", "text": "welcome"}

	srv.Script(imtest.Reply{HTTPStatus: 502}, imtest.Reply{Delay: 5 * time.Second})
	for i, want := range []string{"transient 0s", "transient 0s", "ok", "ok"} {
		err := doSend(t, k, "job-1", params)
		if got := classOf(err); got != want {
			t.Fatalf("attempt %d: %s (%v), want %s", i+1, got, err, want)
		}
	}
	// The attempt that timed out is recorded once the server has noticed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reqs, err := srv.WaitRequests(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs[1:] {
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("a retry sent another body:\n%s\n%s", r.Body, reqs[0].Body)
		}
	}
	// The attempt that timed out was delivered all the same; IM's dedup
	// makes the later ones the same message.
	if n, d := len(srv.Messages()), srv.Duplicates(); n != 1 || d != 2 {
		t.Errorf("%d messages, %d duplicates; want 1, 2", n, d)
	}
	// Another job with the same text to the same user is another message.
	if err := doSend(t, k, "job-2", params); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d messages", n)
	}
}

func TestSendPermanentFailures(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewSend(newClient(t, srv))

	srv.Script(imtest.Reply{ErrorCode: 20003, ErrorInfo: "invalid To_Account"})
	err := doSend(t, k, "j1", map[string]any{"to": "ghost", "text": "hi"})
	var apiErr *im.Error
	if classOf(err) != "permanent" || !errors.As(err, &apiErr) || apiErr.Code != 20003 || !strings.Contains(err.Error(), "ghost") {
		t.Errorf("20003: %v", err)
	}

	// Rendered values are checked again: a template that produced 9 KB.
	spec := k.Spec()
	p, err := spec.Check(map[string]any{"to": actions.Deferred{}, "text": actions.Deferred{}})
	if err != nil {
		t.Fatal(err)
	}
	p["to"], p["text"] = "alice", strings.Repeat("x", 9000)
	err = k.Do(context.Background(), actions.Job{ID: "j2"}, p)
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "9000 bytes") {
		t.Errorf("oversized rendered text: %v", err)
	}
	p["text"], p["to"] = "hi", ""
	if err := k.Do(context.Background(), actions.Job{ID: "j3"}, p); classOf(err) != "permanent" {
		t.Errorf("empty rendered to: %v", err)
	}
	p["to"] = "alice"
	if err := k.Do(context.Background(), actions.Job{}, p); classOf(err) != "permanent" || !strings.Contains(err.Error(), "no id") {
		t.Errorf("job without id: %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want only the first", n)
	}

	// Not configured.
	err = im.NewSend(nil).Do(context.Background(), actions.Job{ID: "j4"}, map[string]any{"to": "a", "text": "b"})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "--im-secret-key") {
		t.Errorf("nil client: %v", err)
	}
}

func TestSendRegisters(t *testing.T) {
	var r actions.Registry
	if err := r.Register(im.NewSend(nil)); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("im.send"); !ok {
		t.Fatal("not found")
	}
}

// BenchmarkSendDo runs im.send against the checking fake (its cost, a
// UserSig inflate and JSON decode per request, included) and against a
// bare server that answers OK, which leaves mostly the client's own cost.
func BenchmarkSendDo(b *testing.B) {
	run := func(b *testing.B, c *im.Client) {
		k := im.NewSend(c)
		p, err := k.Spec().Check(map[string]any{"to": "alice", "from": "bot", "text": "Hi alice, thanks for adding me!"})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if err := k.Do(ctx, actions.Job{ID: "job-" + strconv.Itoa(i)}, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("imtest", func(b *testing.B) {
		srv := imtest.NewServer(b, imtest.Options{})
		run(b, newClient(b, srv))
	})
	b.Run("bare", func(b *testing.B) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","MsgTime":1,"MsgKey":"k"}`)
		}))
		defer hs.Close()
		c, err := im.NewClient(im.Config{Endpoint: hs.URL, SDKAppID: 1, SecretKey: "k", Rate: 1e9, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
}
