package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// From outside: the welcome reads "Hi Alice" for an account whose IM nick
// is Alice and "Hi bob" for one without a nick, through the real binary,
// its queue and the fake IM. The first portrait_get fails with HTTP 502: the
// jobs are retried, and the messages still go out once each.
func TestServeProfileNickInWelcome(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.SetProfile("alice", map[string]any{"Tag_Profile_IM_Nick": "Alice"})
	srv.SetProfile("bob", map[string]any{"Tag_Profile_IM_Gender": "Gender_Type_Male"})
	srv.ScriptFor("/v4/"+im.PortraitGetPath, imtest.Reply{HTTPStatus: http.StatusBadGateway})
	rules := `rules:
  - name: welcome
    on: Sns.CallbackFriendAdd
    actions:
      - im.send:
          from: ${ To_Account }
          to: ${ From_Account }
          text: "Hi ${ profile(From_Account).Nick ?? From_Account }"
        retry: {attempts: 5, backoff: 50ms, max_backoff: 100ms}
    tests:
      - name: by nick
        event: {From_Account: alice, To_Account: official}
        profiles: {alice: {Nick: Alice}}
        match: true
        actions: [ {im.send: {text: Hi Alice}} ]
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "welcome.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000", "FRIENDFLOW_IM_SECRET_KEY=" + imtest.DefaultSecretKey,
		"FRIENDFLOW_PROFILE_CACHE_TTL=1h"},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(),
		"--im-endpoint", srv.URL, "--im-rate", "100000", "--profile-cache-size", "1000")
	waitReady(t, admin)

	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "contenttype": {"json"}}
	body := `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[` +
		`{"From_Account":"alice","To_Account":"official","Initiator_Account":"alice"},` +
		`{"From_Account":"bob","To_Account":"official","Initiator_Account":"bob"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0}`
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
	if _, err := srv.WaitMessages(ctx, 2); err != nil {
		t.Fatalf("%v\n%s", err, p.logs())
	}
	var got []string
	for _, m := range srv.Messages() {
		got = append(got, m.To+": "+m.Text)
	}
	slices.Sort(got)
	if want := []string{"alice: Hi Alice", "bob: Hi bob"}; !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	var portraits int
	for _, r := range srv.Requests() {
		if r.Path == "/v4/"+im.PortraitGetPath {
			portraits++
		}
	}
	// The failed request for both, then one or two (the retries may run
	// apart) that succeed.
	if portraits < 2 || portraits > 3 {
		t.Errorf("%d portrait_get requests, want 2 or 3", portraits)
	}
	resp, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`friendflow_profile_lookups_total{result="miss"}`,
		`friendflow_im_requests_total{path="profile/portrait_get",result="ok"}`,
		`friendflow_im_requests_total{path="profile/portrait_get",result="http_error"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
