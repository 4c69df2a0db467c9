package admin

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

type eventPage struct {
	Events   []record.Event `json:"events"`
	Next     uint64         `json:"next"`
	Recorded int            `json:"recorded"`
}

func (f *adminFixture) events(t *testing.T, query string) eventPage {
	t.Helper()
	status, body := f.do(t, http.MethodGet, "/events"+query, "")
	var p eventPage
	if err := json.Unmarshal([]byte(body), &p); err != nil || status != 200 {
		t.Fatalf("GET /events%s: %d %s", query, status, body)
	}
	return p
}

// waitTrace polls GET /events/{id} until ok says its trace is complete:
// job outcomes arrive from the workers.
func (f *adminFixture) waitTrace(t *testing.T, id uint64, ok func(*Trace) bool) *Trace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := f.do(t, http.MethodGet, "/events/"+strconv.FormatUint(id, 10), "")
		var tr Trace
		if err := json.Unmarshal([]byte(body), &tr); err != nil || status != 200 {
			t.Fatalf("GET /events/%d: %d %s", id, status, body)
		}
		if ok(&tr) {
			return &tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /events/%d: %s", id, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsRecordedEndToEnd(t *testing.T) {
	f := newAdminFixture(t)
	f.signedPost(t, imevent.CmdFriendAdd, string(callbacks.Must("friend_add_response.json")))
	f.signedPost(t, imevent.CmdPrevFriendAdd, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"m",
	  "FriendItem":[{"To_Account":"a","AddWording":"hello"},{"To_Account":"b","AddWording":"cheap loan"}],"EventTime":1}`)

	all := f.events(t, "")
	if len(all.Events) != 4 || all.Recorded != 4 || all.Events[0].To != "b" || all.Events[3].From != "alice" {
		t.Fatalf("events %+v", all)
	}
	newest, oldest := all.Events[0].ID, all.Events[3].ID
	// The doomed job goes to the dead letters, and the event's trace says
	// so: its attempt, then its dead letter.
	tr := f.waitTrace(t, oldest, func(tr *Trace) bool {
		j := tr.Event.Jobs
		return len(j) == 2 && j[1].Outcome == record.JobDead
	})
	if j := tr.Event.Jobs; j[1].Rule != "doomed" || !strings.Contains(j[1].LastError, "unexpected EOF") {
		t.Fatalf("jobs %+v", j)
	}
	if n := len(tr.Event.Trace); n == 0 || tr.Event.Trace[n-1].Outcome != record.JobDead || tr.Event.Trace[n-1].Job != tr.Event.Jobs[1].ID {
		t.Fatalf("trace %+v", tr.Event.Trace)
	}
	// Replayed, it dies again: the replay and the second death are in
	// the trace too.
	if status, body := f.do(t, http.MethodPost, "/dlq/replay", `{"ids":["`+tr.Event.Jobs[1].ID+`"]}`); status != 200 {
		t.Fatalf("replay: %d %s", status, body)
	}
	tr = f.waitTrace(t, oldest, func(tr *Trace) bool {
		var steps []string
		for _, u := range tr.Event.Trace {
			if u.Job == tr.Event.Jobs[1].ID {
				steps = append(steps, u.Outcome)
			}
		}
		return strings.HasSuffix(strings.Join(steps, ","), "dead,replayed,dead")
	})
	if p := f.events(t, "?command=Sns.CallbackPrevFriendAdd&outcome=denied"); len(p.Events) != 1 || p.Events[0].Decision.ResultCode != 38001 {
		t.Fatalf("denied: %+v", p)
	}
	if p := f.events(t, "?account=alice&limit=1"); len(p.Events) != 1 || p.Next != p.Events[0].ID {
		t.Fatalf("page 1: %+v", p)
	} else if p = f.events(t, "?account=alice&limit=1&cursor="+strconv.FormatUint(p.Next, 10)); len(p.Events) != 1 || p.Events[0].ID != oldest || p.Next != 0 {
		t.Fatalf("page 2: %+v", p)
	}
	if p := f.events(t, "?since=1h&until="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))); len(p.Events) != 4 {
		t.Fatalf("since 1h: %d", len(p.Events))
	}
	if p := f.events(t, "?until=1h"); len(p.Events) != 0 {
		t.Fatalf("until an hour ago: %d", len(p.Events))
	}
	for _, bad := range []string{"?outcome=maybe", "?outcome=dead", "?since=yesterday", "?until=x", "?limit=0", "?cursor=x", "?since=1h&until=2h"} {
		if status, body := f.do(t, http.MethodGet, "/events"+bad, ""); status != 400 || !strings.Contains(body, "error") {
			t.Errorf("GET /events%s: %d %s", bad, status, body)
		}
	}

	// The explanation: every rule, the value of each || operand, no secret.
	status, body := f.do(t, http.MethodGet, "/events/"+strconv.FormatUint(newest, 10), "")
	if err := json.Unmarshal([]byte(body), tr); err != nil || status != 200 {
		t.Fatalf("GET /events/%d: %d %s", newest, status, body)
	}
	if !tr.CurrentRules || tr.Explanation.Decision.ResultCode != 38001 || len(tr.Explanation.Rules) != 3 {
		t.Fatalf("trace %+v", tr)
	}
	deny := tr.Explanation.Rules[2]
	if deny.Status != rules.StatusMatched || deny.Operator != "||" || len(deny.Conditions) != 2 || deny.Conditions[0].Value != true || deny.Conditions[1].Value != false {
		t.Fatalf("deny-spam's trace %+v", deny)
	}
	if _, body := f.do(t, http.MethodGet, "/events/"+strconv.FormatUint(oldest, 10), ""); strings.Contains(body, "hunter2") || strings.Contains(body, "hunter3") || !strings.Contains(body, "<redacted>") {
		t.Fatalf("trace of the first event leaks or does not redact: %s", body)
	}
	if status, _ := f.do(t, http.MethodGet, "/events/99", ""); status != 404 {
		t.Fatalf("unknown event: %d", status)
	}

	status, body = f.do(t, http.MethodGet, "/events/export", "")
	if events, err := record.ReadJSONL([]byte(body)); status != 200 || err != nil || len(events) != 4 || len(events[0].Outcomes) != 2 {
		t.Fatalf("export: %d %v %s", status, err, body)
	}
	if strings.Contains(body, "hunter2") {
		t.Fatal("export leaks a secret")
	}
	status, body = f.do(t, http.MethodGet, "/events/export?outcome=denied", "")
	if events, err := record.ReadJSONL([]byte(body)); status != 200 || err != nil || len(events) != 1 || events[0].To != "b" {
		t.Fatalf("export of the denied: %d %v %s", status, err, body)
	}
}

// GET /events/stream sends each new event the filters select as a
// server-sent event, from every writer of the stream.
func TestEventStream(t *testing.T) {
	f := newAdminFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.admin.URL+"/events/stream?outcome=denied", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, ct)
	}
	got := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				got <- data
			}
		}
		close(got)
	}()
	// The follower starts with the first read of the stream: post until
	// an event comes.
	for {
		f.signedPost(t, imevent.CmdPrevFriendAdd, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"m",
		  "FriendItem":[{"To_Account":"a","AddWording":"hello"},{"To_Account":"<b>","AddWording":"cheap loan"}],"EventTime":1}`)
		select {
		case data := <-got:
			var e record.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil || e.To != "<b>" || e.Decision == nil || e.Decision.ResultCode != 38001 {
				t.Fatalf("streamed %s: %v", data, err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no event streamed within 30 s")
		}
	}
}

func TestBacktestEndpoint(t *testing.T) {
	f := newAdminFixture(t)
	f.signedPost(t, imevent.CmdPrevFriendAdd, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"m",
	  "FriendItem":[{"To_Account":"a","AddWording":"hello"},{"To_Account":"b","AddWording":"cheap loan"}],"EventTime":1}`)
	candidate := strings.Replace(adminRules, `AddWording contains "loan"`, `AddWording contains "loan" || AddWording contains "hello"`, 1)

	post := func(ct string, body []byte) (int, TryResult) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.admin.URL+"/backtest", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res TryResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, res
	}
	files, _ := json.Marshal(map[string]any{"files": []RuleFile{{Name: "r.yaml", Data: candidate}}})
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	_ = tw.WriteHeader(&tar.Header{Name: "rules/r.yaml", Mode: 0o644, Size: int64(len(candidate)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(candidate))
	_ = tw.Close()
	for ct, body := range map[string][]byte{"application/json": files, "application/x-tar": tarball.Bytes(), "application/yaml": []byte(candidate)} {
		status, res := post(ct, body)
		if status != 200 || !res.OK || res.Diff == nil || !res.Diff.Changed || len(res.Diff.Decisions) != 1 || res.Diff.Decisions[0].To != "a" || !res.Diff.Decisions[0].New.Deny {
			t.Fatalf("%s: %d %+v", ct, status, res)
		}
	}
	if status, res := post("application/yaml", []byte(adminRules)); status != 200 || res.Diff.Changed {
		t.Fatalf("the serving rules changed something: %+v", res.Diff)
	}
	status, res := post("application/yaml", []byte("rules:\n  - name: x\n    when: From_Acount == 1\n    actions: [{log: {message: hi}}]\n"))
	if status != 422 || res.OK || len(res.Problems) == 0 || res.Problems[0].File != "rules.yaml" || res.Problems[0].Line != 3 {
		t.Fatalf("broken rules: %d %+v", status, res)
	}
	// A backtest reads no secret from the server's environment.
	t.Setenv("CRM_TEST_SECRET", "hunter4")
	leak := "rules:\n  - name: x\n    on: [Sns.CallbackPrevFriendAdd]\n    when: env(\"CRM_TEST_SECRET\") == \"hunter4\"\n    actions: [{webhook: {url: 'http://h/'}}]\n" +
		"  - name: y\n    on: [Sns.CallbackPrevFriendAdd]\n    when: env(\"CRM_TEST_SECRET\") == \"\"\n    actions: [{webhook: {url: 'http://h/'}}]\n"
	status, res = post("application/yaml", []byte(leak))
	if out := mustJSON(t, res); status != 200 || len(res.Diff.Rules) < 2 || len(res.Diff.Rules[0].NewlyMatched) != 0 || len(res.Diff.Rules[1].NewlyMatched) != 2 {
		t.Fatalf("a backtest with env(): %d %s", status, out)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
