package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/record"
)

const (
	e2eAppID = "1400000000"
	e2eToken = "console-e2e-token-41c9"
)

// servedRules are what the instance serves; the backtests change them.
const servedRules = `rules:
  - name: greet
    when: ClientCmd in ["friend_response", "FriendResponse"]
    actions:
      - log: { message: "welcome ${ From_Account }" }
  - name: deny-loans
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan"
    actions:
      - deny: { code: 38001, reason: spam }
`

// served is a friendflow serving servedRules, with its callback URL and
// admin address.
type served struct {
	*proc
	callback, admin, rulesDir string
}

func serveForConsole(t *testing.T, extra ...string) *served {
	t.Helper()
	s := &served{callback: freePort(t), admin: freePort(t), rulesDir: t.TempDir()}
	writeRules(t, s.rulesDir, "rules.yaml", servedRules)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(e2eToken), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", s.callback, "--admin-listen", s.admin, "--callback-token-file", tokenFile,
		"--sdkappid", e2eAppID, "--rules", s.rulesDir, "--data", t.TempDir()}, extra...)
	s.proc = start(t, nil, args...)
	waitReady(t, s.admin)
	return s
}

// post signs and sends a callback as Tencent does, and wants OK.
func (s *served) post(t *testing.T, cmd, body string) map[string]any {
	t.Helper()
	rt := strconv.FormatInt(time.Now().Unix(), 10)
	sum := sha256.Sum256([]byte(e2eToken + rt))
	q := url.Values{"SdkAppid": {e2eAppID}, "CallbackCommand": {cmd}, "contenttype": {"json"},
		"ClientIP": {"10.0.0.7"}, "OptPlatform": {"Android"}, "RequestTime": {rt}, "Sign": {hex.EncodeToString(sum[:])}}
	resp, err := http.Post("http://"+s.callback+"/callback?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil || r["ActionStatus"] != "OK" {
		t.Fatalf("callback %s: %d %s", cmd, resp.StatusCode, raw)
	}
	return r
}

// sendTraffic posts an accepted friend request (two events) and a Prev
// add with one spam and one friendly target.
func (s *served) sendTraffic(t *testing.T) {
	t.Helper()
	s.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_response",
	  "PairList":[{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"},{"From_Account":"bob","To_Account":"alice","Initiator_Account":"alice"}]}`)
	s.post(t, "Sns.CallbackPrevFriendAdd", `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","From_Account":"mallory","Requester_Account":"mallory",
	  "FriendItem":[{"To_Account":"carol","AddWording":"cheap loan"},{"To_Account":"dave","AddWording":"crypto deal"}],"EventTime":1700000000000}`)
}

func TestBacktestAgainstARunningInstance(t *testing.T) {
	s := serveForConsole(t)
	s.sendTraffic(t)
	s.waitRecorded(t, 4)
	adminURL := "http://" + s.admin

	// The serving rules change nothing.
	out, code := cli(t, "backtest", s.rulesDir, "--admin-url", adminURL, "--fail-on-change")
	if code != 0 || !strings.Contains(out, "backtest over 4 recorded events") || !strings.Contains(out, "no change") {
		t.Fatalf("backtest of the serving rules: exit %d\n%s", code, out)
	}

	// Exported, then backtested offline: greet says something else and
	// no longer greets bob; deny-loans also denies crypto.
	out, code = cli(t, "events", "export", "--admin-url", adminURL)
	events, err := record.ReadJSONL([]byte(out))
	if code != 0 || err != nil || len(events) != 4 {
		t.Fatalf("events export: exit %d, %v\n%s", code, err, out)
	}
	exported := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(exported, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	candidate := t.TempDir()
	writeRules(t, candidate, "rules.yaml", strings.NewReplacer(
		`when: ClientCmd in ["friend_response", "FriendResponse"]`, `when: ClientCmd in ["friend_response", "FriendResponse"] && From_Account != "bob"`,
		`"welcome ${ From_Account }"`, `"hello ${ From_Account }"`,
		`AddWording contains "loan"`, `AddWording contains "loan" || AddWording contains "crypto"`).Replace(servedRules))

	out, code = cli(t, "backtest", candidate, "--events", exported, "--fail-on-change")
	id := func(i int) string { return strconv.FormatUint(events[i].ID, 10) } // stored ids (engine/record's codec.go)
	for _, want := range []string{
		"greet: 0 newly matched, 1 no longer matched [" + id(1) + "], 0 unchanged, 1 with changed actions",
		"event " + id(0) + `: log {"message":"welcome alice"}`,
		`→ log {"message":"hello alice"}`,
		"deny-loans: 1 newly matched [" + id(3) + "], 0 no longer matched, 1 unchanged, 0 with changed actions",
		"decision for dave (event " + id(3) + `): allow → deny 38001 "spam"`,
		"changed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("backtest output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("--fail-on-change with changes: exit %d, want 1", code)
	}
	out, code = cli(t, "backtest", candidate, "--events", exported, "--format", "json")
	var d record.Diff
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || !d.Changed || len(d.Decisions) != 1 {
		t.Fatalf("--format json: exit %d %v\n%s", code, err, out)
	}

	// Bad command lines exit 2 and say why.
	for _, args := range [][]string{
		{"backtest"},
		{"backtest", candidate, "--events", exported, "--admin-url", adminURL},
		{"backtest", candidate, "--format", "yaml"},
		{"events"},
	} {
		if out, code := cli(t, args...); code != 2 || !strings.Contains(out, "friendflow") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if out, code := cli(t, "backtest", candidate, "--events", filepath.Join(t.TempDir(), "none.jsonl")); code != 1 || !strings.Contains(out, "none.jsonl") {
		t.Errorf("missing events file: exit %d\n%s", code, out)
	}
}
