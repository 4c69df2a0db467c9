package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
)

// TestServeRefusesANamespaceOfAnotherApp starts friendflow for one
// SdkAppid, stops it, and starts it on the same store for another: it
// refuses, in one line naming both SdkAppids and the flag to change.
func TestServeRefusesANamespaceOfAnotherApp(t *testing.T) {
	data, rules := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "none.yaml"), []byte("rules: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serveArgs := func(sdkappid string) []string {
		return []string{"serve", "--sdkappid", sdkappid, "--listen", freePort(t), "--admin-listen", freePort(t),
			"--rules", rules, "--data", data, "--log-level", "error"}
	}
	args := serveArgs("1400000001")
	p := start(t, nil, args...)
	waitReady(t, args[6])
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("friendflow did not stop")
	}

	cmd := exec.Command(binary, serveArgs("1400000002")...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("serve for another SdkAppid: %v, want exit 2\n%s", err, out)
	}
	want := `friendflow serve: --sdkappid (FRIENDFLOW_SDKAPPID) is 1400000002, but NATS namespace "friendflow" (stream FRIENDFLOW_JOBS) belongs to SdkAppid 1400000001: give this app its own --nats-namespace (FRIENDFLOW_NATS_NAMESPACE)`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("output\n%s\nwant\n%s", got, want)
	}
	// Its own namespace on the same store is fine.
	args = append(serveArgs("1400000002"), "--nats-namespace", "app-two")
	start(t, nil, args...)
	waitReady(t, args[6])
}

func TestByteSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"268435456": 256 << 20, "256MiB": 256 << 20, "1GiB": 1 << 30, "500MB": 500e6, "4 KiB": 4096, "7B": 7} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5GiB", "9999999999TiB", "12XB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %d", in, b)
		}
	}
	for b, want := range map[byteSize]string{256 << 20: "256MiB", 1 << 30: "1GiB", 1536: "1536", 3 << 10: "3KiB", 0: "0"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

// TestNATSURLPasswordIsNeverShown: a password inside --nats-url appears
// neither in the log nor in the error of a failed start.
func TestNATSURLPasswordIsNeverShown(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--sdkappid", "1", "--listen", freePort(t), "--admin-listen", freePort(t),
		"--rules", t.TempDir(), "--nats-url", "nats://ff:hunter2-pw@" + freePort(t), "--log-level", "debug"},
		&stdout, &stderr, func(string) string { return "" })
	out := stdout.String() + stderr.String()
	if code != 1 || strings.Contains(out, "hunter2-pw") || !strings.Contains(out, "nats://ff:xxxxx@127.0.0.1:") {
		t.Fatalf("exit %d, want 1 with the URL redacted:\n%s", code, out)
	}
}

// TestDeadLettersPastMaxAgeAreDiscardedAndCounted: with --dlq-max-age, a
// dead letter goes after that age, and /metrics counts it.
func TestDeadLettersPastMaxAgeAreDiscardedAndCounted(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such customer", http.StatusBadRequest)
	}))
	defer target.Close()
	rulesDir := t.TempDir()
	rule := fmt.Sprintf("rules:\n  - name: crm\n    actions:\n      - webhook: { url: %q }\n", target.URL)
	if err := os.WriteFile(filepath.Join(rulesDir, "crm.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "error", "--dlq-max-age", "2s")
	waitReady(t, admin)
	if status, reply := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", callbacks.Must("friend_add_forced_by_admin.json")); status != 200 {
		t.Fatalf("callback: %d %s", status, reply)
	}
	metric := func(name string) string {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		for line := range strings.Lines(string(raw)) {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if metric("friendflow_dead_letters_discarded_total") == "1" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The webhook's 400 made one dead letter; the age limit discarded it.
	if got := metric("friendflow_dead_letters_discarded_total"); got != "1" || metric("friendflow_dead_letters") != "0" {
		t.Fatalf("discarded %q, dead letters %q; want the dead letter discarded and counted",
			got, metric("friendflow_dead_letters"))
	}
}
