package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const antiSpamRules = `counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
rules:
  - name: deny-floods
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 3
    actions:
      - deny: { code: 38001, reason: too many friend requests }
`

// TestServeCountsPrevRequestsAcrossARestart is DESIGN §5 checked from
// outside, on the real binary with signed callbacks: with a threshold of
// 3, an account's 4th and 5th requests inside the window are denied,
// another account's are not, `counters get` shows 5, and still does
// after a restart on the same data.
func TestServeCountsPrevRequestsAcrossARestart(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "anti-spam.yaml"), []byte(antiSpamRules), 0o644); err != nil {
		t.Fatal(err)
	}
	const token = "counters-token-4b1d"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	serve := func() *proc {
		p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000"}, "serve", "--listen", listen, "--admin-listen", admin,
			"--callback-token-file", tokenFile, "--rules", dir, "--data", data)
		waitReady(t, admin)
		return p
	}
	p := serve()
	prev := func(from, to string) (code int) {
		rt := strconv.FormatInt(time.Now().Unix(), 10)
		sum := sha256.Sum256([]byte(token + rt))
		q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackPrevFriendAdd"}, "contenttype": {"json"},
			"ClientIP": {"127.0.0.1"}, "OptPlatform": {"RESTAPI"}, "RequestTime": {rt}, "Sign": {hex.EncodeToString(sum[:])}}
		body := fmt.Sprintf(`{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":%q,"From_Account":%q,"FriendItem":[{"To_Account":%q,"AddSource":"AddSource_Type_Android"}],"AddType":"Add_Type_Both"}`, from, from, to)
		resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r struct {
			ActionStatus string
			ResultItem   []struct{ ResultCode int }
		}
		if err := json.Unmarshal(raw, &r); err != nil || r.ActionStatus != "OK" || len(r.ResultItem) != 1 {
			t.Fatalf("reply %d %s", resp.StatusCode, raw)
		}
		return r.ResultItem[0].ResultCode
	}
	for i := 1; i <= 5; i++ {
		want := 0
		if i > 3 {
			want = 38001
		}
		if got := prev("eve", "t"+strconv.Itoa(i)); got != want {
			t.Errorf("eve's request %d: ResultCode %d, want %d", i, got, want)
		}
		if got := prev("bob", "t"+strconv.Itoa(i)); i <= 3 && got != 0 {
			t.Errorf("bob's request %d: ResultCode %d, want 0", i, got)
		}
	}
	get := func(key string) string {
		out, err := exec.Command(binary, "counters", "get", "requests_by_sender", key, "--admin-url", "http://"+admin).CombinedOutput()
		if err != nil {
			t.Fatalf("counters get: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := get("eve"); got != "5" {
		t.Errorf("counters get requests_by_sender eve: %q, want 5", got)
	}
	if got := get("nobody"); got != "0" {
		t.Errorf("counters get of a key never counted: %q, want 0", got)
	}
	out, err := exec.Command(binary, "counters", "get", "requests_by_sendr", "eve", "--admin-url", "http://"+admin).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte(`did you mean "requests_by_sender"`)) {
		t.Errorf("counters get of a misspelt counter: %v\n%s", err, out)
	}

	// explain --counters live counts the event on top of the deployment's
	// counts, without writing them.
	ev := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(ev, []byte(`{"CallbackCommand":"Sns.CallbackPrevFriendAdd","From_Account":"eve","FriendItem":[{"To_Account":"zed"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "explain", dir, "--event", ev, "--counters", "live", "--admin-url", "http://"+admin).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`count("requests_by_sender", "eve") = 6 (this event counted)`)) || !bytes.Contains(out, []byte("decision: deny zed")) {
		t.Errorf("explain --counters live: %v\n%s", err, out)
	}
	if got := get("eve"); got != "5" {
		t.Errorf("explain wrote the counter: %q", got)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
	serve()
	if got := get("eve"); got != "5" {
		t.Errorf("after a restart, counters get requests_by_sender eve: %q, want 5", got)
	}
	if got := prev("eve", "t6"); got != 38001 {
		t.Errorf("after a restart, eve's 6th request: ResultCode %d, want 38001", got)
	}
}
