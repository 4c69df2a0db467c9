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

// TestServeCountsPrevRequestsAcrossARestart is docs/rules.md's counters checked from
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

	backtestLive(t, dir, admin)
	if got := get("eve"); got != "5" {
		t.Errorf("backtest --counters live wrote the counter: %q", got)
	}
	topOut, err := exec.Command(binary, "counters", "top", "requests_by_sender", "--top", "1", "--admin-url", "http://"+admin).CombinedOutput()
	if err != nil || !bytes.HasPrefix(topOut, []byte("5\t")) || !bytes.Contains(topOut, []byte("examined all 2 keys")) {
		t.Errorf("counters top: %v\n%s", err, topOut)
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

// backtestLive: the recorded requests (eve's and bob's five each)
// replayed from the deployment's counts (5 each, read and never written)
// are all over the threshold: the first three of each, allowed from
// empty counters, are denied too.
func backtestLive(t *testing.T, rulesDir, admin string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct{ Recorded int }
		resp, err := http.Get("http://" + admin + "/events")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err == nil && list.Recorded == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %d events, want 10 (%v)", list.Recorded, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	type flip struct {
		To  string
		New struct{ Deny bool }
	}
	// flips are the Prev decisions the candidate changes, by target.
	flips := func(args ...string) map[string]int {
		t.Helper()
		out, code := cli(t, append([]string{"backtest", rulesDir, "--admin-url", "http://" + admin, "-o", "json"}, args...)...)
		var d struct{ Decisions []flip }
		if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil {
			t.Fatalf("backtest %v: exit %d %v\n%s", args, code, err, out)
		}
		m := map[string]int{}
		for _, f := range d.Decisions {
			if !f.New.Deny {
				t.Errorf("backtest %v: %s flips to allow", args, f.To)
			}
			m[f.To]++
		}
		return m
	}
	empty, live := flips(), flips("--counters", "live")
	// The first three requests went to t1..t3, from eve and from bob.
	for _, to := range []string{"t1", "t2", "t3"} {
		if empty[to] != 0 || live[to] != 2 {
			t.Errorf("requests to %s flipped to deny: %d from empty counters, %d from live ones; want 0 and 2", to, empty[to], live[to])
		}
	}
	for _, to := range []string{"t4", "t5"} {
		if empty[to] != live[to] {
			t.Errorf("requests to %s flipped to deny: %d from empty counters, %d from live ones; want the same", to, empty[to], live[to])
		}
	}
}
