package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
)

// The alias bombs of issue 13 (up to 9^9 strings in under 500 bytes) fail
// lint at once, with file:line:col. The memory it takes is measured in
// process by rules' TestAliasBombIsRefused: a child's ru_maxrss counts the
// test process's own memory, which the child shares until it execs.
func TestLintAliasBomb(t *testing.T) {
	for _, name := range []string{"aliasbomb-7.yaml", "aliasbomb-9.yaml"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("..", "..", "rules", "testdata", name)
			cmd := exec.Command(binary, "lint", file)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("lint exit %d (%v); want 1:\n%s", code, err, &out)
			}
			want := file + ":12:16: the file has more than 100000 YAML nodes"
			if !strings.Contains(out.String(), want) {
				t.Errorf("lint output:\n%s\nwant %s…", &out, want)
			}
			// CPU time, not wall time: other tests share the machine.
			ps := cmd.ProcessState
			if cpu := ps.UserTime() + ps.SystemTime(); cpu > time.Second {
				t.Errorf("lint took %s of CPU; want < 1s", cpu)
			}
		})
	}
}

// serve with an alias bomb for rules starts, answers /readyz (not ready)
// and /rules (the error with its file:line:col), in little memory.
func TestServeAliasBomb(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "rules", "testdata", "aliasbomb-9.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bomb.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000"},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(), "--log-level", "warn")
	var status struct {
		Status struct {
			Failures  int    `json:"failures"`
			LastError string `json:"last_error"`
		} `json:"status"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for status.Status.Failures == 0 && time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/rules")
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /rules: %d %v", resp.StatusCode, err)
		}
	}
	want := "bomb.yaml:12:16: the file has more than 100000 YAML nodes"
	if !strings.Contains(status.Status.LastError, want) {
		t.Fatalf("/rules last_error %q; want …%s…\n%s", status.Status.LastError, want, p.logs())
	}
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d; want 503", resp.StatusCode)
	}
	// The peak of the running process's own memory (VmHWM), with the
	// race detector's overhead: ru_maxrss would count this test's memory.
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("serve: peak RSS %d MiB", rss)
	if rss > 100 {
		t.Errorf("serve peaked at %d MiB; want < 100 MiB", rss)
	}
}

// A rule whose when is issue 13's billion-step loop fails for each event
// within its budget, on the before- and the after-callback path alike; the
// other rules decide and match as before, and the failure is counted.
func TestServeLoopingRule(t *testing.T) {
	dir := t.TempDir()
	rulesYAML := `rules:
  - name: loops
    on: [Sns.CallbackPrevFriendAdd, Sns.CallbackFriendAdd]
    when: 'let r = 1..999; all(r, {let x = #; all(r, {let y = #; all(r, {x + y + # >= 0})})})'
    lint: {ignore: [FF005]}
    actions: [{log: {message: never}}]
  - name: deny-id1
    on: Sns.CallbackPrevFriendAdd
    when: To_Account == "id1"
    actions: [{deny: {code: 38005, reason: no}}]
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000"},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(), "--log-level", "error")
	waitReady(t, admin)
	// Without the budget the after-callback took minutes: the client's
	// timeout turns that into a failure rather than a hung test.
	client := &http.Client{Timeout: 20 * time.Second}
	post := func(cmd, file string) map[string]any {
		t.Helper()
		q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {cmd}, "contenttype": {"json"}, "ClientIP": {"127.0.0.1"}, "OptPlatform": {"RESTAPI"}}
		resp, err := client.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(callbacks.Must(file)))
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, p.logs())
		}
		defer resp.Body.Close()
		var r map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r["ActionStatus"] != "OK" {
			t.Fatalf("%s: reply %v (%v)", cmd, r, err)
		}
		return r
	}
	r := post("Sns.CallbackPrevFriendAdd", "prev_friend_add.json")
	items, _ := r["ResultItem"].([]any)
	codes := map[string]float64{}
	for _, it := range items {
		m, _ := it.(map[string]any)
		code, _ := m["ResultCode"].(float64)
		codes[m["To_Account"].(string)] = code
	}
	if codes["id1"] != 38005 || codes["id2"] != 0 || len(codes) != 2 {
		t.Errorf("decisions %v; want id1 denied with 38005 by deny-id1, id2 allowed", r["ResultItem"])
	}
	post("Sns.CallbackFriendAdd", "friend_add.json")

	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^friendflow_rule_errors_total\{rule="loops"\} 5$`).Match(metrics) {
		t.Errorf("no rule errors counted for loops:\n%s", grepLines(string(metrics), "rule_errors"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// Issue 22's costly rules against one 1000-pair callback of 64-byte
// accounts: a string doubled twenty times (64 MiB an event before the
// budget), a range of a million numbers, a billion-step loop, and a cheap
// rule. The callback is answered OK, each costly rule fails within the
// callback's one budget, and the process's memory stays bounded.
func TestServeCostlyCallback(t *testing.T) {
	dir := t.TempDir()
	var chain strings.Builder
	chain.WriteString("let v0 = From_Account; ")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&chain, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	chain.WriteString("len(v20) > 0")
	rulesYAML := `rules:
  - name: chain
    when: '` + chain.String() + `'
    lint: {ignore: [FF006]}
    actions: [{log: {message: never}}]
  - name: range
    when: 'len(1..999999) < 0'
    lint: {ignore: [FF005]}
    actions: [{log: {message: never}}]
  - name: loops
    when: 'let r = 1..999; all(r, {let x = #; all(r, {let y = #; all(r, {x + y + # >= 0})})})'
    lint: {ignore: [FF005]}
    actions: [{log: {message: never}}]
  - name: cheap
    when: From_Account startsWith "u"
    actions: [{log: {message: "hi ${ To_Account }"}}]
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000", "GOMEMLIMIT=110MiB"},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(), "--log-level", "error")
	waitReady(t, admin)
	account := func(p string, i int) string { return fmt.Sprintf("%s%063d", p, i) }
	var body strings.Builder
	body.WriteString(`{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0,"PairList":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"From_Account":%q,"To_Account":%q,"Initiator_Account":%q}`, account("u", i), account("v", i), account("u", i))
	}
	body.WriteString("]}")
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "contenttype": {"json"}, "ClientIP": {"127.0.0.1"}, "OptPlatform": {"RESTAPI"}}
	// Before the budget this took minutes or killed the server: the
	// client's timeout turns that into a failure rather than a hung test.
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", strings.NewReader(body.String()))
	if err != nil {
		t.Fatalf("callback: %v\n%s", err, p.logs())
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"OK"`) {
		t.Fatalf("callback: %d %s", resp.StatusCode, raw)
	}
	for _, rule := range []string{"chain", "range", "loops"} {
		if v := metricValue(t, admin, `friendflow_rule_errors_total{rule="`+rule+`"}`); v < 1 {
			t.Errorf("rule %s failed %v times; want its budget to stop it", rule, v)
		}
	}
	// The binary is built with the race detector, which takes a few
	// times the memory: the release build peaks near 55 MiB here, and
	// without the budget the doubling alone took 64 MiB a pair.
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("serve: peak RSS %d MiB", rss)
	if rss > 256 {
		t.Errorf("serve peaked at %d MiB; want < 256 MiB with the race detector", rss)
	}
}
