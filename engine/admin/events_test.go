package admin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

type eventPage struct {
	Events     []record.Event `json:"events"`
	NextBefore uint64         `json:"next_before"`
	Recorded   int            `json:"recorded"`
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

// waitEvents polls GET /events until it lists n events: job outcomes
// arrive from the workers.
func (f *adminFixture) waitEvents(t *testing.T, query string, n int) eventPage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := f.events(t, query)
		if len(p.Events) == n || time.Now().After(deadline) {
			if len(p.Events) != n {
				t.Fatalf("GET /events%s: %d events, want %d: %+v", query, len(p.Events), n, p.Events)
			}
			return p
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
	if len(all.Events) != 4 || all.Recorded != 4 || all.Events[0].ID != 4 || all.Events[0].To != "b" {
		t.Fatalf("events %+v", all)
	}
	// The doomed jobs go to the dead letters, and the recording says so.
	dead := f.waitEvents(t, "?outcome=dead&rule=doomed", 2)
	if j := dead.Events[0].Jobs; len(j) != 2 || j[1].Rule != "doomed" || j[1].Outcome != record.JobDead || !strings.Contains(j[1].LastError, "unexpected EOF") {
		t.Fatalf("jobs %+v", j)
	}
	if p := f.events(t, "?command=Sns.CallbackPrevFriendAdd&outcome=denied"); len(p.Events) != 1 || p.Events[0].Decision.ResultCode != 38001 {
		t.Fatalf("denied: %+v", p)
	}
	if p := f.events(t, "?account=alice&limit=1"); len(p.Events) != 1 || p.NextBefore != 2 {
		t.Fatalf("page 1: %+v", p)
	} else if p = f.events(t, "?account=alice&limit=1&before=2"); len(p.Events) != 1 || p.Events[0].ID != 1 || p.NextBefore != 0 {
		t.Fatalf("page 2: %+v", p)
	}
	if p := f.events(t, "?since=1h"); len(p.Events) != 4 {
		t.Fatalf("since 1h: %d", len(p.Events))
	}
	for _, bad := range []string{"?outcome=maybe", "?since=yesterday", "?limit=0", "?before=x"} {
		if status, body := f.do(t, http.MethodGet, "/events"+bad, ""); status != 400 || !strings.Contains(body, "error") {
			t.Errorf("GET /events%s: %d %s", bad, status, body)
		}
	}

	// The trace: every rule, the value of each || operand, no secret.
	status, body := f.do(t, http.MethodGet, "/events/4", "")
	var tr Trace
	if err := json.Unmarshal([]byte(body), &tr); err != nil || status != 200 {
		t.Fatalf("GET /events/4: %d %s", status, body)
	}
	if !tr.CurrentRules || tr.Explanation.Decision.ResultCode != 38001 || len(tr.Explanation.Rules) != 3 {
		t.Fatalf("trace %+v", tr)
	}
	deny := tr.Explanation.Rules[2]
	if deny.Status != rules.StatusMatched || deny.Operator != "||" || len(deny.Conditions) != 2 || deny.Conditions[0].Value != true || deny.Conditions[1].Value != false {
		t.Fatalf("deny-spam's trace %+v", deny)
	}
	if _, body := f.do(t, http.MethodGet, "/events/1", ""); strings.Contains(body, "hunter2") || strings.Contains(body, "hunter3") || !strings.Contains(body, "<redacted>") {
		t.Fatalf("trace of event 1 leaks or does not redact: %s", body)
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
		if status != 200 || !res.OK || res.Diff == nil || !res.Diff.Changed || len(res.Diff.Decisions) != 1 || res.Diff.Decisions[0].Event != 1 || !res.Diff.Decisions[0].New.Deny {
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
