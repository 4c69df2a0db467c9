package im_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

func TestBatchSendSpec(t *testing.T) {
	spec := im.NewBatchSend(nil).Spec()
	good := []map[string]any{
		{"to": []any{"a"}, "text": "hi"},
		{"to": accounts("u", im.MaxBatchJob), "custom": map[string]any{"data": "x"}},
		{"to": actions.Deferred{}, "text": actions.Deferred{}, "msg_lifetime": "1h", "no_unread": true},
	}
	for _, p := range good {
		if _, err := spec.Check(p); err != nil {
			t.Errorf("Check(%v): %v", p, err)
		}
	}
	bad := map[string]map[string]any{
		"to: 0 items, want at least 1":         {"to": []any{}, "text": "hi"},
		"to: 12001 items, more than the 12000": {"to": accounts("u", im.MaxBatchJob+1), "text": "hi"},
		"to: want list of strings, got string": {"to": "alice", "text": "hi"},
		"one of text":                          {"to": []any{"a"}},
		"8000-byte":                            {"to": []any{"a"}, "text": strings.Repeat("x", 8001)},
		"no_callbacks: unknown parameter":      {"to": []any{"a"}, "text": "hi", "no_callbacks": true},
		"more than the 3072 a push":            {"to": []any{"a"}, "text": "hi", "push": map[string]any{"text": strings.Repeat("x", im.MaxPush+1)}},
		"either push or mute_notifications":    {"to": []any{"a"}, "text": "hi", "push": map[string]any{"title": "t"}, "mute_notifications": true},
	}
	// The push limit holds for rendered values too, before the reply.
	if err := spec.Rendered(map[string]any{"to": []any{"a"}, "text": "hi", "push": map[string]any{"ext": strings.Repeat("x", im.MaxPush+1)}}); err == nil {
		t.Error("Rendered takes a push over the limit")
	}
	for want, p := range bad {
		if _, err := spec.Check(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
}

// 1 200 recipients: three requests of 500, 500 and 200, one message each,
// all with the job's MsgRandom and MsgSeq.
func TestBatchSendSplits(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	to := accounts("u", 1200)
	if err := run(t, k, "job-b", map[string]any{"to": to, "from": "bot", "text": "Hello"}); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range srv.Requests() {
		var b struct{ To_Account []string }
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b.To_Account))
		if r.Path != "/v4/openim/batchsendmsg" {
			t.Errorf("path %s", r.Path)
		}
	}
	if !slices.Equal(sizes, []int{500, 500, 200}) {
		t.Errorf("request sizes %v", sizes)
	}
	wantRandom, wantSeq := im.MsgIDs("job-b")
	msgs := srv.Messages()
	if len(msgs) != 1200 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		if m.To != to[i] || m.From != "bot" || m.Text != "Hello" || !m.Batch || m.MsgRandom != wantRandom || m.MsgSeq != wantSeq {
			t.Fatalf("message %d: %+v", i, m)
		}
		if strings.Contains(string(m.Body), "ForbidCallbackControl") {
			t.Fatalf("batchsendmsg takes no ForbidCallbackControl: %s", m.Body)
		}
	}
}

// push and mute_notifications reach batchsendmsg's OfflinePushInfo as
// they reach sendmsg's, for every recipient.
func TestBatchSendPush(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	if err := run(t, k, "job-p", map[string]any{"to": []any{"a", "b"}, "text": "Hello",
		"push": map[string]any{"title": "New friend", "text": "Say hi", "ext": `{"screen":"chat"}`}}); err != nil {
		t.Fatal(err)
	}
	if err := run(t, k, "job-m", map[string]any{"to": []any{"c"}, "text": "Hello", "mute_notifications": true}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs[:2] {
		if p := m.OfflinePush; p == nil || p.PushFlag != 0 || p.Title != "New friend" || p.Desc != "Say hi" || p.Ext != `{"screen":"chat"}` {
			t.Errorf("%s: push %+v", m.To, p)
		}
	}
	if p := msgs[2].OfflinePush; p == nil || p.PushFlag != 1 || p.Title != "" || p.Desc != "" {
		t.Errorf("muted: push %+v", p)
	}
}

// SomeError: only the transiently failed recipients are retried, with the
// same MsgRandom; 70107 is reported and dropped; nobody gets two copies.
func TestBatchSendPartialFailure(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	srv.Script(imtest.Reply{Accounts: map[string]int{"ghost": 70107, "busy": 20005}})
	params := map[string]any{"to": []any{"a", "ghost", "b", "busy"}, "text": "Hi"}
	err := run(t, k, "job-p", params)
	if classOf(err) != "transient 0s" || !strings.Contains(err.Error(), "ghost (70107)") || !strings.Contains(err.Error(), "busy (20005)") {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if rest := remaining(t, err, "to"); !slices.Equal(rest, []string{"busy"}) {
		t.Fatalf("remaining %v", rest)
	}
	if err := run(t, k, "job-p", actions.Remaining(err)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.To)
	}
	if !slices.Equal(got, []string{"a", "b", "busy"}) || srv.Duplicates() != 0 {
		t.Errorf("delivered to %v, %d duplicates", got, srv.Duplicates())
	}
	reqs := srv.Requests()
	var retry struct {
		To_Account []string
		MsgRandom  uint32
	}
	_ = json.Unmarshal(reqs[1].Body, &retry)
	if r, _ := im.MsgIDs("job-p"); !slices.Equal(retry.To_Account, []string{"busy"}) || retry.MsgRandom != r {
		t.Errorf("retry %+v", retry)
	}
}

// Only permanent failures left: a permanent failure naming them, and they
// are what the dead letter keeps.
func TestBatchSendPermanentRecipients(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	srv.Script(imtest.Reply{Accounts: map[string]int{"ghost": 70107}})
	err := run(t, k, "j", map[string]any{"to": []any{"a", "ghost"}, "text": "Hi"})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "ghost (70107)") {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if rest := remaining(t, err, "to"); !slices.Equal(rest, []string{"ghost"}) {
		t.Errorf("remaining %v", rest)
	}
	// Every recipient unknown: IM answers FAIL 90012 without a list, and
	// each recipient is reported with it.
	srv.Unknown("x", "y")
	err = run(t, k, "j2", map[string]any{"to": []any{"x", "y"}, "text": "Hi"})
	if classOf(err) != "permanent" || !strings.Contains(err.Error(), "x (90012), y (90012)") {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if rest := remaining(t, err, "to"); !slices.Equal(rest, []string{"x", "y"}) {
		t.Errorf("remaining %v", rest)
	}
}

// A request that fails as a whole leaves its recipients and those of the
// later requests, with the error's own class.
func TestBatchSendRequestFailure(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	to := accounts("u", 1100)
	srv.Script(imtest.Reply{}, imtest.Reply{ErrorCode: 90994, ErrorInfo: "internal"})
	err := run(t, k, "j", map[string]any{"to": to, "text": "Hi"})
	if classOf(err) != "transient 0s" {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	rest := remaining(t, err, "to")
	if len(rest) != 600 || rest[0] != "u500" || rest[599] != "u1099" {
		t.Errorf("remaining %d: %v…", len(rest), rest[:3])
	}
	srv.Script(imtest.Reply{ErrorCode: 90009, ErrorInfo: "admin required"})
	if err := run(t, k, "j2", map[string]any{"to": []any{"a"}, "text": "Hi"}); classOf(err) != "permanent" {
		t.Errorf("90009: %s: %v", classOf(err), err)
	}
}

// Each API has its own bucket: draining one leaves the others full, and
// over a simulated second at full rate neither takes from the other.
func TestBudgetsPerAPI(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) {
		cfg.Rate = 100
		cfg.BatchRecipients = 0 // the default
		cfg.APIRates = map[string]float64{"v4/openim/batchsendmsg": 40}
	})
	send, group := c.Budget(im.SendPath), c.Budget(im.AddToGroupPath)
	if send == group || send.Limit() != 100 || group.Limit() != 100 || c.Budget(im.BatchSendPath).Limit() != 40 {
		t.Fatalf("limits %v %v %v", send.Limit(), group.Limit(), c.Budget(im.BatchSendPath).Limit())
	}
	t0 := time.Unix(1_700_000_000, 0)
	if !send.AllowN(t0, send.Burst()) || send.AllowN(t0, 1) {
		t.Fatal("sendmsg's bucket did not drain at its burst")
	}
	if !group.AllowN(t0, group.Burst()) {
		t.Fatal("draining sendmsg's bucket took add_group_member's tokens")
	}
	// One second at 100/s on both: every request of each finds its token.
	for i := 1; i <= 100; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if !send.AllowN(at, 1) || !group.AllowN(at, 1) {
			t.Fatalf("request %d of the second was held back", i)
		}
	}
	// The recipients budget: a full burst plus a minute's refill is the
	// minute's 12 000.
	r := c.RecipientBudget()
	if got := float64(r.Burst()) + 60*float64(r.Limit()); r.Burst() != im.MaxBatchRecipients || math.Abs(got-im.DefaultBatchRecipients) > 1e-6 {
		t.Errorf("burst %d + 60 s × %v = %v recipients, want %d", r.Burst(), r.Limit(), got, im.DefaultBatchRecipients)
	}
	if _, err := im.NewClient(im.Config{Endpoint: srv.URL, SDKAppID: 1, SecretKey: "k", APIRates: map[string]float64{"openim/sendmsgs": 5}}); err == nil || !strings.Contains(err.Error(), "unknown API") {
		t.Errorf("unknown API: %v", err)
	}
}

// Through real requests: with sendmsg's budget spent, a further sendmsg
// cannot get a token before its deadline (rate.Limiter says so at once,
// without waiting), while add_group_member goes straight through.
func TestBudgetsDoNotSlowEachOther(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("g", imtest.Public)
	c := newClient(t, srv, func(cfg *im.Config) { cfg.Rate = 0.001 }) // burst 1, then one per 1000 s
	if err := run(t, im.NewSend(c), "s1", map[string]any{"to": "a", "text": "hi"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	send := im.NewSend(c)
	p, _ := send.Spec().Check(map[string]any{"to": "b", "text": "hi"})
	err := send.Do(ctx, actions.Job{ID: "s2"}, p)
	if classOf(err) != "transient 0s" || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("second sendmsg: %s: %v", classOf(err), err)
	}
	for _, k := range []actions.Kind{im.NewAddToGroup(c), im.NewFriendUpdate(c), im.NewBatchSend(c)} {
		params := map[string]any{"group": "g", "members": []any{"a"}}
		switch k.Spec().Name {
		case "im.friend_update":
			params = map[string]any{"from": "a", "to": "b", "remark": "r"}
		case "im.batch_send":
			params = map[string]any{"to": []any{"c"}, "text": "hi"}
		}
		p, _ := k.Spec().Check(params)
		if err := k.Do(ctx, actions.Job{ID: "x", Params: params}, p); err != nil {
			t.Errorf("%s after sendmsg's budget was spent: %v", k.Spec().Name, err)
		}
	}
	if n := len(srv.Requests()); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

// A request IM did not answer may have been sent, and batchsendmsg has no
// documented dedup: its recipients are reported, not sent again, while
// the chunks not sent yet wait for the retry.
func TestBatchSendNoAnswerNotResent(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBatchSend(newClient(t, srv))
	srv.Script(imtest.Reply{HTTPStatus: 502})
	to := make([]any, im.MaxBatchRecipients+2)
	for i := range to {
		to[i] = fmt.Sprintf("u%03d", i)
	}
	err := run(t, k, "j", map[string]any{"to": to, "text": "Hi"})
	if classOf(err) != "transient 0s" || !strings.Contains(err.Error(), "u000 (no answer from IM, may have been sent: not resent)") {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if rest := remaining(t, err, "to"); !slices.Equal(rest, []string{"u500", "u501"}) {
		t.Errorf("remaining %v, want the chunk not sent yet", rest)
	}
	ab, _ := actions.Abandoned(err)["to"].([]string)
	if len(ab) != im.MaxBatchRecipients || ab[0] != "u000" {
		t.Errorf("abandoned %d recipients", len(ab))
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
