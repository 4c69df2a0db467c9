package queue

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestFormat1MessagesRunAfterUpgrade: messages stored by the previous
// release (JSON, format 1), still in a data dir after an upgrade, run, and
// their retries and delays work from there.
func TestFormat1MessagesRunAfterUpgrade(t *testing.T) {
	s := newScript()
	var mu sync.Mutex
	seen := map[string]Job{}
	q := openTest(t, t.TempDir(), s, func(c *Config) {
		c.Hooks.JobFinished = func(job *Job, _ string, _ error, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen[job.ID] = *job
		}
	})
	ctx := context.Background()
	// Two callbacks grouped in one message, as that release's committer
	// wrote them.
	group := `{"v":1,"jobs":[` +
		`{"id":"v1-a","rule":"test-rule","action":"script","params":{"plan":"ok"},"event":{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice"},"attempt":0,"once_key":"alice|bob","callback_id":"cb-v1"},` +
		`{"id":"v1-b","rule":"test-rule","action":"script","params":{"plan":"transient:1"},"event":{"CallbackCommand":"Sns.CallbackFriendAdd"},"attempt":0,"retry":{"attempts":3,"backoff":10000000,"max_backoff":20000000},"callback_id":"cb-v1"},` +
		`{"id":"v1-c","rule":"other-rule","action":"script","params":{"plan":"ok"},"event":null,"attempt":0,"callback_id":"cb-v1-2"}]}`
	if _, err := q.js.Publish(ctx, q.names.batchPrefix+"3", []byte(group)); err != nil {
		t.Fatal(err)
	}
	// A job that was waiting in a message of its own.
	due := time.Now().Add(300 * time.Millisecond)
	dueJSON, _ := due.MarshalJSON()
	one := &nats.Msg{Subject: q.names.one, Header: nats.Header{}, Data: []byte(`{"v":1,"jobs":[` +
		`{"id":"v1-d","rule":"test-rule","action":"script","params":{"plan":"ok"},"event":{"CallbackCommand":"Sns.CallbackFriendAdd"},"attempt":0,"due":` + string(dueJSON) + `,"callback_id":"cb-v1-3"}]}`)}
	one.Header.Set(hdrDue, strconv.FormatInt(due.UnixNano(), 10))
	if _, err := q.js.PublishMsg(ctx, one); err != nil {
		t.Fatal(err)
	}
	runTest(t, q)

	ids := []string{"v1-a", "v1-b", "v1-c", "v1-d"}
	eventually(t, 10*time.Second, "the format 1 jobs done", func() bool {
		for _, id := range ids {
			if s.doneCount(id) != 1 {
				return false
			}
		}
		return true
	})
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q) })
	if got := s.attemptNumbers("v1-b"); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("v1-b attempts %v, want [1 2] (retried once)", got)
	}
	if times := s.callTimes("v1-d"); len(times) != 1 || times[0].Before(due) {
		t.Errorf("v1-d ran at %v, due %v", times, due)
	}
	mu.Lock()
	defer mu.Unlock()
	a := seen["v1-a"]
	if a.CallbackID != "cb-v1" || a.OnceKey != "alice|bob" || a.Rule != "test-rule" ||
		!same(a.Params, map[string]any{"plan": "ok"}) ||
		string(a.Event) != `{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice"}` {
		t.Errorf("v1-a arrived as %+v", a)
	}
	if b := seen["v1-b"]; b.Retry != (Retry{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}) || b.FirstAttempt.IsZero() {
		t.Errorf("v1-b arrived as %+v", b)
	}
	if c := seen["v1-c"]; c.CallbackID != "cb-v1-2" || c.Rule != "other-rule" {
		t.Errorf("v1-c arrived as %+v", c)
	}
}

// TestDamagedMessagesAreDeadLettered: an unknown format or a truncated
// message goes to the dead letters with what is wrong, and the queue moves
// on.
func TestDamagedMessagesAreDeadLettered(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	ctx := context.Background()
	body, err := appendCallback(nil, "cb-cut", []Job{mkJob("cut-a", "ok"), mkJob("cut-b", "ok")})
	if err != nil {
		t.Fatal(err)
	}
	whole := append(appendHeader(nil, 2), body...)
	damaged := map[string]string{
		string(whole[:len(whole)-7]):                     "truncated",
		string(append([]byte{0x09}, whole[1:]...)):       "unknown job message format (first byte 0x09)",
		string(append(whole[:len(whole):len(whole)], 1)): "1 bytes after the last job",
	}
	for data := range damaged {
		if _, err := q.js.Publish(ctx, q.names.batchPrefix+"2", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	runTest(t, q)
	enqueue(t, q, "cb-after", mkJob("after", "ok"))
	eventually(t, 10*time.Second, "the next job done", func() bool { return s.doneCount("after") == 1 })
	var dls []DeadLetter
	eventually(t, 5*time.Second, "three dead letters", func() bool {
		dls, _ = q.DeadLetters(ctx)
		return len(dls) == 3
	})
	for _, dl := range dls {
		want, ok := damaged[string(dl.Raw)]
		if !ok || dl.Reason != "undecodable message" || !strings.Contains(dl.LastError, want) {
			t.Errorf("dead letter %s: reason %q, error %q, raw %q", dl.ID, dl.Reason, dl.LastError, dl.Raw)
		}
	}
	if s.doneCount("cut-a")+s.doneCount("cut-b") != 0 {
		t.Error("jobs of a damaged message ran")
	}
}

// TestEventThatIsNotJSONIsDeadLettered: events are stored unchecked; a
// dead letter is JSON, and must still be written.
func TestEventThatIsNotJSONIsDeadLettered(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	runTest(t, q)
	ctx := context.Background()
	job := mkJob("bad-event", "permanent")
	job.Event = json.RawMessage("not {json")
	enqueue(t, q, "cb-bad-event", job)
	var dls []DeadLetter
	eventually(t, 10*time.Second, "a dead letter", func() bool {
		dls, _ = q.DeadLetters(ctx)
		return len(dls) == 1
	})
	if got := string(dls[0].Job.Event); got != `"not {json"` {
		t.Errorf("dead letter's event %s", got)
	}
	if _, err := json.Marshal(dls); err != nil {
		t.Errorf("dead letters do not encode: %v", err)
	}
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q) })
}

// TestReplayOfAMessageAnOlderReplicaCouldNotRead: during a rolling upgrade
// of a cluster, a replica of the previous release dead-letters a format 2
// message as undecodable; once upgraded, Replay stores it again.
func TestReplayOfAMessageAnOlderReplicaCouldNotRead(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	ctx := context.Background()
	body, err := appendCallback(nil, "cb-new", []Job{mkJob("new-a", "ok"), mkJob("new-b", "ok")})
	if err != nil {
		t.Fatal(err)
	}
	// As the previous release's poison wrote them: one it could not read
	// but this release can, one nobody can.
	for id, raw := range map[string][]byte{
		"undecodable-7": append(appendHeader(nil, 2), body...),
		"undecodable-8": []byte("not json"),
	} {
		dl, err := json.Marshal(DeadLetter{ID: id, LastError: "undecodable job message: invalid character", Reason: "undecodable message", DeadAt: time.Now(), Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.js.Publish(ctx, q.names.deadSubject(id), dl); err != nil {
			t.Fatal(err)
		}
	}
	runTest(t, q)
	if n, err := q.Replay(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	eventually(t, 10*time.Second, "the replayed jobs done", func() bool {
		return s.doneCount("new-a") == 1 && s.doneCount("new-b") == 1
	})
	dls, err := q.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].ID != "undecodable-8" {
		t.Errorf("dead letters left: %+v; want the unreadable one", dls)
	}
	eventually(t, 5*time.Second, "queue drained", func() bool { return drained(t, q) })
}
