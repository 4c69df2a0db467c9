package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// A failure stays with the account it belongs to: through the durable
// queue, against the fake IM answering with Tencent's documented shapes.

func accountsN(prefix string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func (h *imHarness) deadByID(t *testing.T) map[string]DeadLetter {
	t.Helper()
	dead, err := h.q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]DeadLetter{}
	for _, d := range dead {
		byID[d.ID] = d
	}
	return byID
}

// 700 recipients; the first request's 500 are all unknown, so IM answers
// FAIL 90012 without an ErrorList. The other 200 are sent, once each (one
// of them after a transient failure of its own), and the 500 go to a dead
// letter of their own, each named with the code.
func TestBatchSendAllFailChunkThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	unknown := accountsN("ghost", 500)
	known := accountsN("user", 200)
	for _, a := range unknown {
		h.srv.Unknown(a.(string))
	}
	// The second request: user007 fails transiently.
	h.srv.ScriptFor(im.BatchSendPath, imtest.Reply{}, imtest.Reply{Accounts: map[string]int{"user007": 20005}})
	enqueue(t, h.q, "cb-700", imJob("batch", "im.batch_send", map[string]any{"to": append(slices.Clone(unknown), known...), "text": "hi"}))
	h.settled(t, "batch")
	h.outcomes(t, "batch", OutcomeRetried, OutcomeDone)

	sent := map[string]int{}
	for _, m := range h.srv.Messages() {
		sent[m.To]++
	}
	if len(sent) != 200 {
		t.Errorf("%d recipients got the message, want the 200 known", len(sent))
	}
	for a, n := range sent {
		if n != 1 || !strings.HasPrefix(a, "user") {
			t.Errorf("%s got %d messages", a, n)
		}
	}
	d, ok := h.deadByID(t)["batch~1"]
	if !ok {
		t.Fatalf("no dead letter for the unknown recipients: %v", h.deadByID(t))
	}
	if got := toStrings(d.Job.Params["to"]); len(got) != 500 || got[0] != "ghost000" {
		t.Errorf("the dead letter names %d recipients (%v…)", len(got), got[:min(3, len(got))])
	}
	if d.Reason != "permanent failure" || !strings.Contains(d.LastError, "ghost000 (90012)") {
		t.Errorf("dead letter %+v", d)
	}
	if _, dead := h.deadByID(t)["batch"]; dead {
		t.Error("the job itself was dead-lettered; only the unknown recipients should be")
	}
}

// add_group_member answered 10006 (a rate limit) once: the member is added
// on a retry, and the request is counted as rate-limited.
func TestAddToGroupRateLimitedThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("g", imtest.Public)
	h.srv.ScriptFor(im.AddToGroupPath, imtest.Reply{ErrorCode: 10006, ErrorInfo: "operation frequency limit"})
	enqueue(t, h.q, "cb-rl", imJob("group", "im.add_to_group", map[string]any{"group": "g", "members": []any{"alice"}}))
	h.settled(t, "group")
	h.outcomes(t, "group", OutcomeRetried, OutcomeDone)
	if got := h.srv.GroupMembers("g"); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("members %v", got)
	}
	if n := h.results(im.ResultRateLimited); n != 1 {
		t.Errorf("%d requests counted rate-limited, want 1", n)
	}
}

// 150 members, one unknown: IM refuses the request holding it with 10019;
// friendflow narrows it down, adds the other 149, and reports the unknown
// one by account, in a dead letter naming it with the code.
func TestAddToGroupUnknownMemberThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("g", imtest.Public)
	members := accountsN("m", 150)
	h.srv.Unknown("m042")
	enqueue(t, h.q, "cb-150", imJob("group", "im.add_to_group", map[string]any{"group": "g", "members": members}))
	h.settled(t, "group")
	h.outcomes(t, "group", OutcomeDead)
	got := h.srv.GroupMembers("g")
	if len(got) != 149 || slices.Contains(got, "m042") {
		t.Errorf("%d members added (m042 among them: %v)", len(got), slices.Contains(got, "m042"))
	}
	d, ok := h.deadByID(t)["group"]
	if !ok {
		t.Fatal("no dead letter")
	}
	if to := toStrings(d.Job.Params["members"]); !slices.Equal(to, []string{"m042"}) || !strings.Contains(d.LastError, "m042 (10019)") {
		t.Errorf("dead letter names %v: %s", to, d.LastError)
	}
}

// friend_update refused as a whole for one account: the merged request is
// narrowed, the other friend is updated, and only the job of the friend at
// fault fails, with the code.
func TestFriendUpdateNarrowedThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.ScriptFor(im.FriendUpdatePath,
		imtest.Reply{ErrorCode: 30003, ErrorInfo: "account does not exist"}, // the merged request
		imtest.Reply{ErrorCode: 30003, ErrorInfo: "account does not exist"}) // its first half: gone
	enqueue(t, h.q, "cb-fu",
		imJob("label-gone", "im.friend_update", map[string]any{"from": "official", "to": "gone", "remark": "x"}),
		imJob("label-bob", "im.friend_update", map[string]any{"from": "official", "to": "bob", "remark": "Bob"}),
	)
	h.settled(t, "label-gone", "label-bob")
	h.outcomes(t, "label-gone", OutcomeDead)
	h.outcomes(t, "label-bob", OutcomeDone)
	if r := h.srv.Friend("official", "bob")["Tag_SNS_IM_Remark"]; r != "Bob" {
		t.Errorf("bob's remark %v", r)
	}
	if d := h.deadByID(t)["label-gone"]; !strings.Contains(d.LastError, "30003") {
		t.Errorf("dead letter %+v", d)
	}
}

// A batch that runs again after it was sent (as after a crash between
// IM's answer and the queue storing the job's progress) messages nobody
// twice: the queue's ledger knows the request was made, and its
// recipients are dead-lettered as possibly sent instead of sent again.
// batchsendmsg documents no dedup that a resend could rely on.
func TestBatchSendNotResentAfterCrashThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	job := imJob("batch", "im.batch_send", map[string]any{"to": []any{"a", "b"}, "text": "hi"})
	enqueue(t, h.q, "cb-crash", job)
	h.settled(t, "batch")
	h.outcomes(t, "batch", OutcomeDone)
	// The same job, as its message would be delivered again.
	again := imJob("batch-again", "im.batch_send", map[string]any{"to": []any{"a", "b"}, "text": "hi"})
	again.ID = "batch"
	enqueue(t, h.q, "cb-crash-2", again)
	eventually(t, 20*time.Second, "the rerun to settle", func() bool {
		_, ok := h.deadByID(t)["batch"]
		return ok
	})
	if n := len(h.srv.Messages()); n != 2 {
		t.Errorf("%d messages, want a and b once each", n)
	}
	d := h.deadByID(t)["batch"]
	if !strings.Contains(d.LastError, "may have") || !slices.Equal(toStrings(d.Job.Params["to"]), []string{"a", "b"}) {
		t.Errorf("dead letter %+v", d)
	}
	// The claim went with the report: a replay sends.
	if n, err := h.q.Replay(context.Background(), []string{"batch"}); err != nil || n != 1 {
		t.Fatalf("replay: %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := h.srv.WaitMessages(ctx, 4); err != nil {
		t.Fatal(err)
	}
}

// Every code of the classification table, answered by the fake IM to an
// add_group_member request, ends the job as its class says: transient and
// rate-limited codes are retried (and the member added), a re-sign code is
// cured inside the call by a fresh UserSig, per-account codes dead-letter
// the member with the code, whole-request codes the job.
func TestIMCodeTableThroughQueue(t *testing.T) {
	h := newIMHarness(t)
	h.srv.AddGroup("g", imtest.Public)
	for i, c := range im.Codes() {
		if c.Class == im.ClassSuccess {
			// 0, and the relationship APIs' per-account answers that
			// mean done (30539 pending, 31704 already gone): none is an
			// error add_group_member answers with.
			continue
		}
		id := fmt.Sprintf("code-%d", c.Code)
		member := fmt.Sprintf("u%d", i)
		h.srv.ScriptFor(im.AddToGroupPath, imtest.Reply{ErrorCode: c.Code, ErrorInfo: c.Meaning})
		enqueue(t, h.q, "cb-"+id, imJob(id, "im.add_to_group", map[string]any{"group": "g", "members": []any{member}}))
		h.settled(t, id)
		added := slices.Contains(h.srv.GroupMembers("g"), member)
		switch c.Class {
		case im.ClassTransient, im.ClassRateLimited:
			h.outcomes(t, id, OutcomeRetried, OutcomeDone)
		case im.ClassResign:
			h.outcomes(t, id, OutcomeDone)
		default:
			h.outcomes(t, id, OutcomeDead)
			d := h.deadByID(t)[id]
			if want := fmt.Sprintf("(%d)", c.Code); c.Class == im.ClassAccount && !strings.Contains(d.LastError, member+" "+want) {
				t.Errorf("%d: dead letter %q does not name %s with the code", c.Code, d.LastError, member)
			} else if !strings.Contains(d.LastError, fmt.Sprint(c.Code)) {
				t.Errorf("%d: dead letter %q lacks the code", c.Code, d.LastError)
			}
		}
		if want := c.Class != im.ClassRequest && c.Class != im.ClassAccount; added != want {
			t.Errorf("%d (%s): member added %v, want %v", c.Code, c.Class, added, want)
		}
	}
	if n := h.results(im.ResultRateLimited); n != 5 {
		t.Errorf("%d requests counted rate-limited, want the 5 rate-limit codes once each", n)
	}
}
