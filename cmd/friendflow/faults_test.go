package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeRule writes one rule file into a new rules directory.
func writeRule(t *testing.T, rule string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// postCallback posts body as an unsigned callback of command and returns
// the status and the reply.
func postCallback(t *testing.T, client *http.Client, listen, command string, body []byte) (int, string) {
	t.Helper()
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {command}, "contenttype": {"json"}}
	resp, err := client.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestReplayedCallbackKeepsItsDeliveryID posts one callback three times,
// as Tencent's replay or a proxy retrying would: the webhook receiver sees
// three requests with one X-Friendflow-Delivery id, so it can drop the
// copies.
func TestReplayedCallbackKeepsItsDeliveryID(t *testing.T) {
	d := &deliveries{seen: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	rules := writeRule(t, fmt.Sprintf(`rules:
  - name: notify-crm
    on: Sns.CallbackFriendAdd
    actions:
      - webhook: { url: "http://%s/hook" }
`, ln.Addr()))
	listen, admin := freePort(t), freePort(t)
	start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rules, "--data", t.TempDir(), "--log-level", "warn")
	waitReady(t, admin)

	body := []byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","EventTime":1700000000123,"PairList":[{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0}`)
	for range 3 {
		if status, reply := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", body); status != 200 || !strings.Contains(reply, `"OK"`) {
			t.Fatalf("callback: %d %s", status, reply)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, total := d.counts(); total < 3 && time.Now().Before(deadline); _, total = d.counts() {
		time.Sleep(20 * time.Millisecond)
	}
	unique, total := d.counts()
	if total != 3 || unique != 1 {
		t.Fatalf("receiver saw %d requests with %d delivery ids, want 3 with 1", total, unique)
	}
}
