package queue

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// The IM action kinds end to end: jobs stored in the embedded queue, run by
// its workers against the fake IM, which checks every request as Tencent
// documents it.

type imHarness struct {
	srv   *imtest.Server
	q     *Queue
	hooks *hookLog
	// observed counts the client's requests by result (im.Result*), as
	// the metrics do.
	mu       sync.Mutex
	observed map[string]int
}

func (h *imHarness) results(result string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.observed[result]
}

func newIMHarness(t *testing.T) *imHarness {
	t.Helper()
	srv := imtest.NewServer(t, imtest.Options{})
	cfg := srv.Config()
	cfg.Logger = testLogger(t)
	h := &imHarness{srv: srv, observed: map[string]int{}}
	cfg.Observe = func(_, result string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.observed[result]++
	}
	c, err := im.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry(builtin.Deps{IM: c})
	hooks := newHookLog()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Open(ctx, Config{DataDir: t.TempDir(), Registry: reg, Logger: testLogger(t), Workers: 4, Hooks: hooks.hooks()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	runTest(t, q)
	h.q, h.hooks = q, hooks
	return h
}

// imJob is a job of kind with params, retried quickly.
func imJob(id, kind string, params map[string]any) Job {
	return Job{
		Job: actions.Job{ID: id, Rule: "onboarding", Action: kind, Params: params,
			Event: json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"official","To_Account":"alice"}`)},
		Retry: Retry{Attempts: 5, Backoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
	}
}

// settled waits until every job id has a final outcome (done or dead).
// Outcomes are compared as sets: a retry handed off to the queue may run,
// and report, before the worker of the failed attempt has reported it.
func (h *imHarness) settled(t *testing.T, ids ...string) {
	t.Helper()
	eventually(t, 20*time.Second, "jobs to settle", func() bool {
		for _, id := range ids {
			if !slices.ContainsFunc(h.hooks.of(id), final) {
				return false
			}
		}
		return true
	})
}

func final(outcome string) bool { return outcome == OutcomeDone || outcome == OutcomeDead }

func (h *imHarness) outcomes(t *testing.T, id string, want ...string) {
	t.Helper()
	sameOutcomes(t, id, h.hooks.of(id), want)
}

// sameOutcomes compares outcomes in any order (see settled).
func sameOutcomes(t *testing.T, id string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("job %s: outcomes %v, want %v", id, got, want)
	}
}

func (h *imHarness) requestsTo(path string) []imtest.Request {
	var out []imtest.Request
	for _, r := range h.srv.Requests() {
		if r.Path == "/v4/"+path {
			out = append(out, r)
		}
	}
	return out
}

// One callback's onboarding: every kind succeeds, and the callback's three
// friend_update jobs for one from go to IM as one request.
func TestIMKindsSucceedThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("onboarding", imtest.Public)
	enqueue(t, h.q, "cb-1",
		imJob("welcome", "im.send", map[string]any{"to": "alice", "text": "Welcome!"}),
		imJob("group", "im.add_to_group", map[string]any{"group": "onboarding"}),
		imJob("label-a", "im.friend_update", map[string]any{"from": "official", "to": "alice", "remark": "Alice"}),
		imJob("label-b", "im.friend_update", map[string]any{"from": "official", "to": "bob", "groups": []any{"vip"}}),
		imJob("label-c", "im.friend_update", map[string]any{"from": "official", "to": "carol", "custom": map[string]any{"source": "qr"}}),
		imJob("admins", "im.batch_send", map[string]any{"to": []any{"admin1", "admin2"}, "text": "VIP alice joined"}),
	)
	ids := []string{"welcome", "group", "label-a", "label-b", "label-c", "admins"}
	h.settled(t, ids...)
	for _, id := range ids {
		h.outcomes(t, id, OutcomeDone)
	}
	if got := h.srv.GroupMembers("onboarding"); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("group members %v", got)
	}
	if reqs := h.requestsTo(im.FriendUpdatePath); len(reqs) != 1 {
		t.Errorf("%d friend_update requests, want the three updates of one from in one", len(reqs))
	}
	if n := len(h.srv.FriendUpdates()); n != 3 {
		t.Errorf("%d friend updates", n)
	}
	var to []string
	for _, m := range h.srv.Messages() {
		to = append(to, m.To)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"admin1", "admin2", "alice"}) {
		t.Errorf("messages to %v", to)
	}
}

// Transient failures are retried until they succeed, and the retry has no
// duplicate effect: batch_send resends only the failed recipient, with the
// same MsgRandom.
func TestIMKindsRetryTransientThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("g", imtest.Public)
	h.srv.ScriptFor(im.BatchSendPath, imtest.Reply{Accounts: map[string]int{"busy": 20005}})
	h.srv.ScriptFor(im.AddToGroupPath, imtest.Reply{ErrorCode: 10002, ErrorInfo: "internal error"})
	h.srv.ScriptFor(im.FriendUpdatePath, imtest.Reply{Accounts: map[string]int{"bob": 30008}})
	enqueue(t, h.q, "cb-2",
		imJob("batch", "im.batch_send", map[string]any{"to": []any{"a", "busy", "b"}, "text": "hi"}),
		imJob("group", "im.add_to_group", map[string]any{"group": "g", "members": []any{"x", "y"}}),
		imJob("label", "im.friend_update", map[string]any{"from": "official", "to": "bob", "remark": "Bob"}),
	)
	h.settled(t, "batch", "group", "label")
	for _, id := range []string{"batch", "group", "label"} {
		h.outcomes(t, id, OutcomeRetried, OutcomeDone)
	}
	var to []string
	for _, m := range h.srv.Messages() {
		to = append(to, m.To)
	}
	if !slices.Equal(to, []string{"a", "b", "busy"}) || h.srv.Duplicates() != 0 {
		t.Errorf("messages to %v, %d duplicates", to, h.srv.Duplicates())
	}
	batches := h.requestsTo(im.BatchSendPath)
	if len(batches) != 2 {
		t.Fatalf("%d batchsendmsg requests", len(batches))
	}
	var first, retry struct {
		To_Account []string
		MsgRandom  uint32
	}
	_ = json.Unmarshal(batches[0].Body, &first)
	_ = json.Unmarshal(batches[1].Body, &retry)
	if !slices.Equal(retry.To_Account, []string{"busy"}) || retry.MsgRandom != first.MsgRandom {
		t.Errorf("retry %+v after %+v", retry, first)
	}
	if got := h.srv.GroupMembers("g"); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("members %v", got)
	}
	if r := h.srv.Friend("official", "bob")["Tag_SNS_IM_Remark"]; r != "Bob" {
		t.Errorf("remark %v", r)
	}
}

// Permanent failures go to the dead letters at once, keeping only the work
// that is left: the recipients that cannot be sent to, not those sent.
func TestIMKindsDeadLetterThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("live", imtest.AVChatRoom)
	h.srv.ScriptFor(im.BatchSendPath, imtest.Reply{Accounts: map[string]int{"ghost": 70107}})
	h.srv.ScriptFor(im.FriendUpdatePath, imtest.Reply{Accounts: map[string]int{"gone": 30003}})
	enqueue(t, h.q, "cb-3",
		imJob("batch", "im.batch_send", map[string]any{"to": []any{"a", "ghost"}, "text": "hi"}),
		imJob("unknown-group", "im.add_to_group", map[string]any{"group": "nope"}),
		imJob("avchatroom", "im.add_to_group", map[string]any{"group": "live"}),
		imJob("label", "im.friend_update", map[string]any{"from": "official", "to": "gone", "remark": "x"}),
	)
	ids := []string{"batch", "unknown-group", "avchatroom", "label"}
	h.settled(t, ids...)
	for _, id := range ids {
		h.outcomes(t, id, OutcomeDead)
	}
	dead, err := h.q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]DeadLetter{}
	for _, d := range dead {
		byID[d.ID] = d
	}
	for _, id := range ids {
		if d, ok := byID[id]; !ok || d.Reason != "permanent failure" || d.Attempts != 1 {
			t.Errorf("dead letter %s: %+v", id, d)
		}
	}
	if to := byID["batch"].Job.Params["to"]; !slices.Equal(toStrings(to), []string{"ghost"}) {
		t.Errorf("the dead batch_send names %v, want only ghost", to)
	}
	if len(h.srv.Messages()) != 1 {
		t.Errorf("messages %+v", h.srv.Messages())
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}
