package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const listsTestRules = `lists:
  - name: spammers
    description: accounts whose friend requests are denied
rules:
  - name: deny-listed
    on: Sns.CallbackPrevFriendAdd
    when: From_Account in list("spammers")
    actions:
      - deny: { code: 38001, reason: "listed" }
`

// TestListsOnARunningServe: docs/rules.md's lists from outside — lists add takes
// effect on a running serve within 2 s (a signed Prev callback is
// denied), lists remove undoes it; import, show and contains work on the
// same list.
func TestListsOnARunningServe(t *testing.T) {
	dir, rulesDir := t.TempDir(), t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "lists-token-51c2\n")
	writeFile(t, filepath.Join(rulesDir, "lists.yaml"), listsTestRules)
	listen, adminAddr := freePort(t), freePort(t)
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", adminAddr,
		"--callback-token-file", tokenFile, "--rules", rulesDir, "--data", t.TempDir())
	waitReady(t, adminAddr)
	admin := []string{"--admin-url", "http://" + adminAddr}
	run := func(args ...string) (int, string, string) {
		return runBin(t, ".", nil, append(args, admin...)...)
	}
	// decision sends eve's request to bob and returns bob's ResultCode.
	decision := func() int {
		code, out, errOut := runBin(t, ".", nil, "send", "--url", "http://"+listen+"/callback", "--sdkappid", "1400000000",
			"--callback-token-file", tokenFile, "--command", "Sns.CallbackPrevFriendAdd", "--from", "eve", "--requester", "eve", "--to", "bob")
		if code != 0 {
			t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
		}
		var reply struct{ ResultItem []struct{ ResultCode int } }
		if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[1]), &reply); err != nil || len(reply.ResultItem) != 1 {
			t.Fatalf("reply %q: %v", out, err)
		}
		return reply.ResultItem[0].ResultCode
	}
	// within polls for want and says how long it took: at most 2 s.
	within := func(what string, want int) {
		t.Helper()
		start := time.Now()
		for decision() != want {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s: not within 2s\n%s", what, p.logs())
			}
		}
		t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
	}

	if got := decision(); got != 0 {
		t.Fatalf("eve denied before being listed: %d", got)
	}
	if code, out, errOut := run("lists", "add", "spammers", "eve", "mallory"); code != 0 || !strings.Contains(out, "2 members added to spammers") {
		t.Fatalf("lists add: exit %d\n%s%s", code, out, errOut)
	}
	within("eve denied after lists add", 38001)
	if code, out, errOut := run("lists", "remove", "spammers", "eve"); code != 0 {
		t.Fatalf("lists remove: exit %d\n%s%s", code, out, errOut)
	}
	within("eve allowed after lists remove", 0)

	if code, out, _ := run("lists", "show", "spammers", "--contains", "mallory"); code != 0 || out != "mallory is in spammers\n" {
		t.Fatalf("contains mallory: exit %d %q", code, out)
	}
	if code, out, _ := run("lists", "show", "spammers", "--contains", "eve"); code != 1 || out != "eve is not in spammers\n" {
		t.Fatalf("contains eve: exit %d %q", code, out)
	}

	// An import, then a replace, each one member a line.
	file := filepath.Join(dir, "members.txt")
	var b strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&b, "user_%d\n", i)
	}
	writeFile(t, file, b.String()+"\n  eve  \r\n")
	code, out, errOut := run("lists", "import", "spammers", file)
	if code != 0 || !strings.Contains(out, "2501 members added to spammers") || !strings.Contains(errOut, "sent 2502 lines") {
		t.Fatalf("lists import: exit %d\n%s%s", code, out, errOut)
	}
	within("eve denied after the import", 38001)
	// explain reads the deployment's lists with --lists live, and none
	// without.
	evFile := filepath.Join(dir, "prev.json")
	writeFile(t, evFile, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","From_Account":"eve","FriendItem":[{"To_Account":"bob"}]}`)
	if code, out, errOut := run("explain", rulesDir, "--event", evFile, "--lists", "live"); code != 0 || !strings.Contains(out, "decision: deny bob with 38001") {
		t.Fatalf("explain --lists live: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := run("explain", rulesDir, "--event", evFile); code != 0 || !strings.Contains(out, "decision: allow bob") {
		t.Fatalf("explain with empty lists: exit %d\n%s%s", code, out, errOut)
	}
	// A backtest against the instance reads its lists, as its recorded
	// outcomes do: the same rules change nothing (with empty lists, eve's
	// denials would be "no longer matched").
	code, out, errOut = run("backtest", rulesDir, "-o", "json")
	if code != 0 || !strings.Contains(out, `"changed": false`) || strings.Contains(out, `"unchanged": 0`) {
		t.Fatalf("backtest: exit %d\n%s%s", code, out, errOut)
	}
	writeFile(t, file, "zed\n")
	if code, out, errOut := run("lists", "import", "spammers", file, "--replace"); code != 0 || !strings.Contains(out, "1 members now make up spammers") {
		t.Fatalf("lists import --replace: exit %d\n%s%s", code, out, errOut)
	}
	within("eve allowed after the replace", 0)
	if code, out, errOut := run("lists", "show", "spammers"); code != 0 || out != "zed\n" {
		t.Fatalf("lists show after the replace: exit %d\n%q%s", code, out, errOut)
	}
	code, out, errOut = run("lists")
	if code != 0 || !strings.Contains(out, "spammers") || !strings.Contains(out, "accounts whose friend requests are denied") {
		t.Fatalf("lists: exit %d\n%s%s", code, out, errOut)
	}
	// A list the rules do not declare is refused, with the ones they do.
	if code, _, errOut := run("lists", "add", "spamers", "x"); code != 1 || !strings.Contains(errOut, `unknown list "spamers"`) || !strings.Contains(errOut, "spammers") {
		t.Fatalf("lists add to an undeclared list: exit %d\n%s", code, errOut)
	}
	logs := p.logs()
	for _, want := range []string{`"msg":"list members add"`, `"accounts":["eve","mallory"]`, `"op":"replace"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	_ = os.Remove(file)
}
