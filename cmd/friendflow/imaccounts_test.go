package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// A failure stays with the account it belongs to, seen from outside: the
// real binary against the fake IM answering with Tencent's documented
// reply shapes. One callback's rule sends a batch to 700 recipients whose
// first 500 are unknown (IM: FAIL 90012 without an ErrorList), adds 150
// members of which one is unknown (IM: 10019 for any request holding
// it), and whose first add_group_member request is answered with the rate
// limit 10006: retried, and counted as rate-limited.
func TestServeIMAccountFailuresAgainstFakeIM(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("big", imtest.Public)
	// The first add_group_member request is answered with the rate limit.
	srv.ScriptFor(im.AddToGroupPath, imtest.Reply{ErrorCode: 10006, ErrorInfo: "operation frequency limit"})
	var recipients, members []string
	for i := range 700 {
		a := fmt.Sprintf("user%03d", i)
		if i < 500 {
			a = fmt.Sprintf("ghost%03d", i)
			srv.Unknown(a)
		}
		recipients = append(recipients, a)
	}
	for i := range 150 {
		members = append(members, fmt.Sprintf("m%03d", i))
	}
	srv.Unknown("m042")
	list := func(l []string) string { b, _ := json.Marshal(l); return string(b) }
	rules := `rules:
  - name: fanout
    on: Sns.CallbackFriendAdd
    actions:
      - im.batch_send: {to: ` + list(recipients) + `, text: hi}
        retry: {attempts: 5, backoff: 50ms, max_backoff: 100ms}
      - im.add_to_group: {group: big, members: ` + list(members) + `}
        retry: {attempts: 5, backoff: 50ms, max_backoff: 100ms}
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fanout.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000", "FRIENDFLOW_IM_SECRET_KEY=" + imtest.DefaultSecretKey},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(),
		"--im-endpoint", srv.URL, "--im-rate", "100000", "--im-batch-recipients", "1000000")
	waitReady(t, admin)

	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "contenttype": {"json"}}
	body := `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"official","To_Account":"alice","Initiator_Account":"official"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0}`
	resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("callback: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := srv.WaitMessages(ctx, 200)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.logs())
	}
	// Both jobs settled once their dead letters exist: nothing sends after.
	dead := waitDead(t, admin, 2)
	sent := map[string]int{}
	for _, m := range srv.Messages() {
		sent[m.To]++
	}
	if len(msgs) < 200 || len(sent) != 200 || len(srv.Messages()) != 200 {
		t.Errorf("%d messages to %d recipients, want the 200 known once each", len(srv.Messages()), len(sent))
	}
	if got := srv.GroupMembers("big"); len(got) != 149 {
		t.Errorf("%d members added, want 149", len(got))
	}
	byAction := map[string]string{}
	for _, d := range dead {
		byAction[d.Action] = d.LastError
	}
	if e := byAction["im.batch_send"]; !strings.Contains(e, "ghost000 (90012)") {
		t.Errorf("batch dead letter: %q", e)
	}
	if e := byAction["im.add_to_group"]; !strings.Contains(e, "m042 (10019)") {
		t.Errorf("group dead letter: %q", e)
	}
	resp, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `friendflow_im_requests_total{path="group_open_http_svc/add_group_member",result="rate_limited"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("metrics lack %s", want)
	}
}

type deadView struct {
	ID        string `json:"id"`
	Action    string `json:"action"`
	LastError string `json:"last_error"`
}

// waitDead waits for n dead letters on the admin API.
func waitDead(t *testing.T, admin string, n int) []deadView {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/dlq")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			DeadLetters []deadView `json:"dead_letters"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("/dlq: %q", raw)
		}
		if len(out.DeadLetters) >= n {
			return out.DeadLetters
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want %d: %s", len(out.DeadLetters), n, bytes.TrimSpace(raw))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
