package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
)

// durationKeys are the log keys that hold durations; they must read as Go
// duration strings ("1.5s"), never as integers of nanoseconds.
var durationKeys = map[string]bool{
	"took": true, "in": true, "timeout": true, "interval": true, "for": true,
	"delay": true, "wait": true, "backoff": true, "after": true, "age": true,
}

// scenario runs the real binary at debug level through what makes most of
// its log lines: an accepted and a rejected callback, a webhook job that
// fails once and is retried, a broken reload and its fix, and a stop. It
// returns the log lines and a scrape of /metrics taken before the stop.
func scenario(t *testing.T) (lines []string, metrics string) {
	t.Helper()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hits.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	rulesDir := t.TempDir()
	file := filepath.Join(rulesDir, "hook.yaml")
	good := fmt.Sprintf(`rules:
  - name: notify
    actions:
      - webhook: { url: %q }
        retry: { attempts: 5, backoff: 10ms, max_backoff: 20ms }
`, hook.URL+"/hook")
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "debug", "--reload-interval", "1h")
	waitReady(t, admin)

	post := func(sdkappid string) int {
		q := url.Values{"SdkAppid": {sdkappid}, "CallbackCommand": {"Sns.CallbackFriendAdd"}}
		resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json",
			bytes.NewReader(callbacks.Must("friend_add_forced_by_admin.json")))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("1400000000"); s != 200 {
		t.Fatalf("callback: %d", s)
	}
	if s := post("1"); s == 200 {
		t.Fatal("a callback for another app was accepted")
	}
	reload := func() int {
		resp, err := http.Post("http://"+admin+"/reload", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := os.WriteFile(file, []byte("rules:\n  - name: x\n    when: To_Acount == 1\n    actions: [ { log: { message: m } } ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := reload(); s != http.StatusUnprocessableEntity {
		t.Fatalf("reload of broken rules: %d", s)
	}
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := reload(); s != 200 {
		t.Fatalf("reload of fixed rules: %d", s)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.logs(), `"msg":"job done"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the webhook job never finished:\n%s", p.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...), string(raw)
}

// objectKeys reads one JSON object from dec and reports every key that
// appears twice in it or in an object nested in it.
func objectKeys(dec *json.Decoder, top map[string]json.RawMessage) (dups []string, err error) {
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if top != nil {
			top[key] = v
		}
		if bytes.HasPrefix(v, []byte("{")) {
			inner, err := objectKeys(json.NewDecoder(bytes.NewReader(v)), nil)
			if err != nil {
				return nil, err
			}
			dups = append(dups, inner...)
		}
	}
	_, err = dec.Token() // }
	return dups, err
}

// TestLogsAreClean reads the real JSON log of the binary: no line repeats
// a key, durations are Go duration strings, errors are under err, and the
// lines operators look for carry what they need.
func TestLogsAreClean(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	lines, _ := scenario(t)
	byMsg := map[string]map[string]json.RawMessage{}
	nats := 0
	for _, line := range lines {
		fields := map[string]json.RawMessage{}
		dups, err := objectKeys(json.NewDecoder(strings.NewReader(line)), fields)
		if err != nil {
			t.Errorf("not one JSON object: %s: %v", line, err)
			continue
		}
		if len(dups) > 0 {
			t.Errorf("keys %v repeated in %s", dups, line)
		}
		if _, ok := fields["error"]; ok {
			t.Errorf("an error under error, not err: %s", line)
		}
		for k, v := range fields {
			if !durationKeys[k] {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				t.Errorf("duration %s is %s, not a duration string: %s", k, v, line)
			} else if _, err := time.ParseDuration(s); err != nil {
				t.Errorf("duration %s = %q: %v", k, s, err)
			}
		}
		if string(fields["component"]) == `"nats"` {
			nats++
		}
		var msg string
		_ = json.Unmarshal(fields["msg"], &msg)
		byMsg[msg] = fields
	}
	if nats == 0 {
		t.Error("no line of the embedded NATS server at debug level")
	}
	want := map[string][]string{
		"callback accepted":      {"callback_id", "command", "events", "matches", "jobs"},
		"callback rejected":      {"callback_id", "reason", "err"},
		"job failed, will retry": {"job_id", "err", "in"},
		"job done":               {"job_id", "took"},
		"rules reload failed; the last good rules keep serving": {"err", "problems"},
		"rules reloaded; the previous reload had failed":        {"hash", "took"},
	}
	for msg, keys := range want {
		f, ok := byMsg[msg]
		if !ok {
			t.Errorf("no %q line in:\n%s", msg, strings.Join(lines, "\n"))
			continue
		}
		for _, k := range keys {
			if _, ok := f[k]; !ok {
				t.Errorf("%q line lacks %s", msg, k)
			}
		}
	}
	if f := byMsg["callback accepted"]; f != nil && (string(f["matches"]) != "1" || string(f["jobs"]) != "1") {
		t.Errorf("callback accepted: matches %s, jobs %s; want 1 and 1", f["matches"], f["jobs"])
	}
}
