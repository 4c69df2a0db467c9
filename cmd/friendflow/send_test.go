package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSendEndToEnd drives `friendflow send` against the real binary
// serving the example rules with callback authentication on: the signed
// callback is accepted and its rule runs; a wrong token, a wrong SdkAppid
// and a missing signature are refused and fail send.
func TestSendEndToEnd(t *testing.T) {
	listen, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("send-token-3c1f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongToken := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongToken, []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--callback-token-file", tokenFile, "--rules", exampleRules(t), "--data", t.TempDir(), "--log-level", "debug")
	waitReady(t, admin)
	url := "http://" + listen + "/callback"
	send := func(args ...string) (int, string, string) {
		return runBin(t, ".", nil, append([]string{"send", "--url", url}, args...)...)
	}
	const okReply = `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`

	// A sample body, as Tencent sends it.
	code, out, errOut := send("--sdkappid", "1400000000", "--callback-token-file", tokenFile, "--event", "../../examples/callbacks/friend_add_forced_by_admin.json")
	if code != 0 || !strings.HasPrefix(out, "HTTP 200 OK (") || !strings.HasSuffix(out, ")\n"+okReply+"\n") {
		t.Fatalf("send --event: exit %d\n%s%s", code, out, errOut)
	}
	waitLog(t, p, "forced friend add by administrator")

	// A body built from flags: an accepted request, welcomed by its rule.
	code, out, errOut = send("--sdkappid", "1400000000", "--callback-token-file", tokenFile,
		"--command", "Sns.CallbackFriendAdd", "--from", "alice", "--to", "bob", "--client-cmd", "friend_response")
	if code != 0 || !strings.HasSuffix(out, okReply+"\n") {
		t.Fatalf("send --from --to: exit %d\n%s%s", code, out, errOut)
	}
	waitLog(t, p, "welcome queued for bob from alice")

	// A follow callback listing two accounts gives two events (the
	// official sample), and an unfollow built from flags writes its
	// To_Account as the array of strings Tencent sends.
	code, out, errOut = send("--sdkappid", "1400000000", "--callback-token-file", tokenFile, "--event", "../../examples/callbacks/follow_add.json")
	if code != 0 || !strings.HasSuffix(out, okReply+"\n") {
		t.Fatalf("send follow_add.json: exit %d\n%s%s", code, out, errOut)
	}
	waitLog(t, p, "UserID_001 follows UserID_002")
	waitLog(t, p, "UserID_001 follows UserID_003")
	code, out, errOut = send("--sdkappid", "1400000000", "--callback-token-file", tokenFile,
		"--command", "Follow.CallbackAfterFollowDelete", "--from", "alice", "--to", "bob", "--to", "carol")
	if code != 0 || !strings.HasSuffix(out, okReply+"\n") {
		t.Fatalf("send follow delete: exit %d\n%s%s", code, out, errOut)
	}
	waitLog(t, p, "alice unfollowed bob")
	waitLog(t, p, "alice unfollowed carol")

	// A before-callback: the reply decides each target.
	code, out, errOut = send("--sdkappid", "1400000000", "--callback-token-file", tokenFile, "--opt-platform", "Android",
		"--command", "Sns.CallbackPrevFriendAdd", "--from", "spammer_1", "--requester", "spammer_1", "--to", "bob", "--to", "carol",
		"--add-wording", "hi")
	if code != 0 {
		t.Fatalf("send Prev: exit %d\n%s%s", code, out, errOut)
	}
	var reply struct {
		ActionStatus string
		ResultItem   []struct {
			To_Account string
			ResultCode int
		}
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[1]), &reply); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if reply.ActionStatus != "OK" || len(reply.ResultItem) != 2 || reply.ResultItem[1].To_Account != "carol" || reply.ResultItem[1].ResultCode != 38002 {
		t.Fatalf("send Prev: %+v", reply)
	}

	// Refusals: what Tencent would count as failed callbacks fail send.
	for _, tt := range []struct {
		name   string
		args   []string
		status string
	}{
		{"wrong token", []string{"--sdkappid", "1400000000", "--callback-token-file", wrongToken}, "HTTP 401 Unauthorized"},
		{"no token", []string{"--sdkappid", "1400000000"}, "HTTP 401 Unauthorized"},
		{"other app", []string{"--sdkappid", "1400000001", "--callback-token-file", tokenFile}, "HTTP 403 Forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := send(append(tt.args, "--from", "alice", "--to", "bob")...)
			if code != 1 || !strings.HasPrefix(out, tt.status) || !strings.Contains(out, `"ActionStatus":"FAIL"`) {
				t.Fatalf("exit %d\n%s", code, out)
			}
		})
	}
	if strings.Contains(p.logs(), "send-token-3c1f") {
		t.Error("the token appears in the logs")
	}
}

// waitLog waits for a line of the running friendflow's log.
func waitLog(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.logs(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the log never said %q:\n%s", want, p.logs())
}

// send refuses command lines it cannot turn into a callback, before any
// request.
func TestSendUsageErrors(t *testing.T) {
	base := []string{"send", "--url", "http://127.0.0.1:1/callback", "--sdkappid", "1"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--sdkappid", "1", "--from", "a", "--to", "b"}, "send needs --url"},
		{[]string{"send", "--url", "ftp://x/cb", "--sdkappid", "1"}, "--url must be an http:// or https:// URL"},
		{[]string{"send", "--url", "http://x/cb", "--from", "a", "--to", "b"}, "send needs --sdkappid"},
		{append(base, "--from", "a"), "send needs --event FILE, or --from and --to"},
		{append(base, "--command", "Sns.CallbackFriendAd", "--from", "a", "--to", "b"), `unknown command "Sns.CallbackFriendAd"; did you mean "Sns.CallbackFriendAdd"?`},
		{append(base, "--command", "Sns.CallbackFriendDelete", "--from", "a", "--to", "b", "--force-flag", "1"), "--force-flag: Sns.CallbackFriendDelete does not carry ForceFlag"},
		{append(base, "--event", "../../examples/callbacks/friend_add.json", "--to", "b"), "--event sends its file as it is; leave out --to"},
		{append(base, "--force-flag", "yes"), `invalid value "yes" for --force-flag`},
		{append(base, "--from", "a", "--to", "b", "--callback-token-file", "/nonexistent/token"), "--callback-token-file"},
	} {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			code, out, errOut := runBin(t, ".", nil, tt.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errOut, tt.want)
			}
		})
	}
	// Nothing listening: an error, exit 1, without the Sign.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runBin(t, ".", nil, append(base, "--from", "a", "--to", "b", "--callback-token-file", tokenFile)...)
	if code != 1 || !strings.Contains(errOut, "POST http://127.0.0.1:1/callback: dial tcp") || strings.Contains(errOut, "Sign=") {
		t.Fatalf("send to nothing: exit %d %s", code, errOut)
	}
}
