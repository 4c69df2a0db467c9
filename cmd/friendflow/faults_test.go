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

// metricValue reads one sample of the admin listener's /metrics; -1 when
// it is absent.
func metricValue(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// TestServeWarnsAndCountsUnsignedCallbacks: without --callback-token the
// start says callbacks are not authenticated and every accepted callback
// is counted; with a token neither happens.
func TestServeWarnsAndCountsUnsignedCallbacks(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("token=%v", signed), func(t *testing.T) {
			listen, admin := freePort(t), freePort(t)
			env := []string{"FRIENDFLOW_SDKAPPID=1400000000"}
			if signed {
				env = append(env, "FRIENDFLOW_CALLBACK_TOKEN=tok-7c1e")
			}
			p := start(t, env, "serve", "--listen", listen, "--admin-listen", admin,
				"--rules", "../../examples/rules", "--data", t.TempDir())
			waitReady(t, admin)
			status, _ := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", []byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b"}]}`))
			warned := strings.Contains(p.logs(), "no --callback-token: callbacks are not authenticated")
			unsigned := metricValue(t, admin, "friendflow_callbacks_unsigned_total")
			if signed {
				if status != http.StatusUnauthorized || warned || unsigned != 0 {
					t.Fatalf("with a token: status %d, warned %v, unsigned %v; want 401, no warning, 0", status, warned, unsigned)
				}
				return
			}
			if status != 200 || !warned || unsigned != 1 {
				t.Fatalf("without a token: status %d, warned %v, unsigned %v; want 200, a warning, 1\n%s", status, warned, unsigned, p.logs())
			}
		})
	}
}
