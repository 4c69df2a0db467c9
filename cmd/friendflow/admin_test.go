package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

const adminTestRules = "rules:\n  - name: greet\n    on: Sns.CallbackFriendAdd\n    actions:\n      - log: { message: hi }\n"

// TestAdminTokenReloadRules: serve with --admin-token-file; `reload` and
// `rules` through the admin API, with and without the token, against the
// real binary.
func TestAdminTokenReloadRules(t *testing.T) {
	dir, rulesDir := t.TempDir(), t.TempDir()
	const token = "adm-7d1c0e5b2a9f64c3"
	tokenFile := filepath.Join(dir, "admin-token")
	writeFile(t, tokenFile, token+"\n")
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules)
	listen, adminAddr := freePort(t), freePort(t)
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", adminAddr,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "warn", "--admin-token-file", tokenFile)
	waitReady(t, adminAddr) // the probes need no token
	url := "http://" + adminAddr

	code, out, errOut := runBinary(t, nil, "rules", "--admin-url", url)
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "--admin-token-file (FRIENDFLOW_ADMIN_TOKEN_FILE)") {
		t.Fatalf("rules without the token: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinary(t, nil, "rules", "--admin-url", url, "--admin-token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "serving 1 rules from 1 files") || !strings.Contains(out, "greet.yaml:2") ||
		!strings.Contains(out, "Sns.CallbackFriendAdd") || !strings.Contains(out, "reloads: 1 ok, 0 failed") {
		t.Fatalf("rules: exit %d\n%s%s", code, out, errOut)
	}
	// The token file from the environment, as in the container where serve
	// found it: `kubectl exec … friendflow reload` needs no flag.
	code, out, errOut = runBinary(t, []string{"FRIENDFLOW_ADMIN_URL=" + url, "FRIENDFLOW_ADMIN_TOKEN_FILE=" + tokenFile}, "reload")
	if code != 0 || !strings.HasPrefix(out, "ok: 1 rules loaded, hash ") {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}

	// A broken edit: reload exits 1 with every problem as file:line:col;
	// the last good rules serve on, and `rules` says so.
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules+"  - name: greet\n    actions: [{ nosuch: {} }]\n")
	code, out, errOut = runBinary(t, nil, "reload", "--admin-url", url, "--admin-token-file", tokenFile)
	if code != 1 || !strings.Contains(out, "greet.yaml:6:") || !strings.Contains(errOut, "reload failed") ||
		!strings.Contains(errOut, "the last good rules keep serving") {
		t.Fatalf("reload of a broken file: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinary(t, nil, "rules", "--admin-url", url, "--admin-token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "serving 1 rules") || !strings.Contains(out, "last reload FAILED") || !strings.Contains(out, "greet.yaml:6:") {
		t.Fatalf("rules after a failed reload: exit %d\n%s%s", code, out, errOut)
	}

	// The old --admin-listen spelling still works for dlq.
	code, out, errOut = runBinary(t, nil, "dlq", "list", "--admin-listen", adminAddr, "--admin-token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "0 dead letters") {
		t.Fatalf("dlq list --admin-listen: exit %d\n%s%s", code, out, errOut)
	}
	// Nor is the token shown anywhere.
	if strings.Contains(p.logs(), token) {
		t.Fatal("the admin token is in the logs")
	}
}

// TestAdminHTTPGuard: the guard as a browser or a scanner meets it on the
// real listener.
func TestAdminHTTPGuard(t *testing.T) {
	rulesDir := t.TempDir()
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules)
	listen, adminAddr := freePort(t), freePort(t)
	start(t, []string{"FRIENDFLOW_ADMIN_TOKEN=tok-3b9f-5e02c7d1a6"}, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", adminAddr,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "warn", "--admin-host", "ff-admin.example")
	waitReady(t, adminAddr)
	do := func(method, path, host string, hdr ...string) (int, http.Header, string) {
		req, err := http.NewRequest(method, "http://"+adminAddr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(raw)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _, _ := do("GET", p, "10.0.0.7:9090"); status != 200 {
			t.Fatalf("probe %s: %d", p, status)
		}
	}
	if status, hdr, body := do("GET", "/rules", ""); status != 401 || hdr.Get("WWW-Authenticate") == "" || !strings.Contains(body, `"error"`) {
		t.Fatalf("GET /rules without a token: %d %v %s", status, hdr, body)
	}
	auth := []string{"Authorization", "Bearer tok-3b9f-5e02c7d1a6"}
	if status, _, body := do("GET", "/rules", "", auth...); status != 200 {
		t.Fatalf("GET /rules with the token: %d %s", status, body)
	}
	if status, _, body := do("GET", "/rules", "ff-admin.example:80", auth...); status != 200 {
		t.Fatalf("GET /rules through --admin-host: %d %s", status, body)
	}
	if status, _, body := do("GET", "/rules", "rebound.attacker.example:"+strings.Split(adminAddr, ":")[1], auth...); status != http.StatusMisdirectedRequest {
		t.Fatalf("GET /rules with a foreign Host: %d %s", status, body)
	}
	if status, _, body := do("POST", "/reload", "", append(auth, "Origin", "http://attacker.example")...); status != 403 {
		t.Fatalf("cross-origin POST /reload: %d %s", status, body)
	}
}

// TestServeRefusesOpenAdmin: a non-loopback admin listener needs a token
// or an explicit --admin-insecure, and a token needs 16 bytes.
func TestServeRefusesOpenAdmin(t *testing.T) {
	rulesDir := t.TempDir()
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules)
	port := strings.Split(freePort(t), ":")[1]
	for _, addr := range []string{"0.0.0.0:" + port, ":" + port} {
		code, _, errOut := runBinary(t, []string{"FRIENDFLOW_SDKAPPID=1", "FRIENDFLOW_ADMIN_LISTEN=" + addr}, "serve", "--rules", rulesDir, "--data", t.TempDir())
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--admin-listen (FRIENDFLOW_ADMIN_LISTEN) "+addr+" is not a loopback address") ||
			!strings.Contains(errOut, "--admin-token-file (FRIENDFLOW_ADMIN_TOKEN_FILE)") || !strings.Contains(errOut, "--admin-insecure (FRIENDFLOW_ADMIN_INSECURE)") {
			t.Fatalf("serve with admin on %s and no token: exit %d %q", addr, code, errOut)
		}
	}
	// A token too short to guard anything is refused, on loopback too, with
	// its length and never its value; a file's trailing newline is no part
	// of it (16 bytes pass).
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	for _, tok := range []string{"k3y9z", "q7w8e9r0t1y2u3i"} {
		writeFile(t, tokenFile, tok+"\n")
		code, _, errOut := runBinary(t, []string{"FRIENDFLOW_SDKAPPID=1", "FRIENDFLOW_ADMIN_TOKEN_FILE=" + tokenFile}, "serve", "--rules", rulesDir, "--data", t.TempDir())
		want := fmt.Sprintf("--admin-token (FRIENDFLOW_ADMIN_TOKEN): the admin token is %d bytes; use at least 16", len(tok))
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, tok) {
			t.Fatalf("serve with a %d-byte admin token: exit %d %q", len(tok), code, errOut)
		}
	}
	writeFile(t, tokenFile, "0123456789abcdef\n")
	if _, err := parseServe([]string{"--sdkappid", "1", "--admin-token-file", tokenFile}, func(string) string { return "" }); err != nil {
		t.Fatalf("a 16-byte admin token: %v", err)
	}
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1", "FRIENDFLOW_ADMIN_INSECURE=true"}, "serve", "--listen", freePort(t),
		"--admin-listen", "0.0.0.0:"+port, "--rules", rulesDir, "--data", t.TempDir())
	waitReady(t, "127.0.0.1:"+port)
	if !strings.Contains(p.logs(), "the admin API is open to anyone") {
		t.Fatalf("no warning for --admin-insecure:\n%s", p.logs())
	}
}

// TestServeMissingRules: a missing rules path (the image ships none) is a
// start-up error; a present but broken one is not: the process stays up,
// not ready, until `friendflow reload` (or the watcher) loads a fix.
func TestServeMissingRules(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "rules")
	code, _, errOut := runBinary(t, []string{"FRIENDFLOW_SDKAPPID=1"}, "serve", "--rules", missing, "--data", t.TempDir())
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--rules (FRIENDFLOW_RULES): "+missing+" does not exist: mount a directory of rule files") {
		t.Fatalf("serve without rules: exit %d %q", code, errOut)
	}

	rulesDir := t.TempDir()
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), "rules:\n  - name: greet\n    actions: [{ nosuch: {} }]\n")
	adminAddr := freePort(t)
	start(t, nil, "serve", "--sdkappid", "1", "--listen", freePort(t), "--admin-listen", adminAddr,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "error", "--reload-interval", "1h")
	admin := "--admin-url=" + adminAddr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve with broken rules did not stay up")
		}
	}
	// The admin port opens before the first load finishes (callbacks wait
	// for it, the health check does not), so the failure shows up shortly.
	var out string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, errOut = runBinary(t, nil, "rules", admin)
		if code != 0 || strings.Contains(out, "greet.yaml:3:") || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || !strings.Contains(out, "no rules loaded: not ready") || !strings.Contains(out, "greet.yaml:3:") {
		t.Fatalf("rules with broken rules at start: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runBinary(t, nil, "reload", admin)
	if code != 1 || !strings.Contains(out, "greet.yaml:3:") || !strings.Contains(errOut, "no rules loaded: not ready") {
		t.Fatalf("reload of still broken rules: exit %d\n%s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules)
	if code, out, errOut = runBinary(t, nil, "reload", admin); code != 0 || !strings.Contains(out, "ok: 1 rules loaded") {
		t.Fatalf("reload of fixed rules: exit %d\n%s%s", code, out, errOut)
	}
	waitReady(t, adminAddr)
}

// TestEnvTwinsServeOnly: FRIENDFLOW_ALL=true must not turn `dlq drop`
// into "drop every dead letter"; one dead letter survives it.
func TestEnvTwinsServeOnly(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "gone", http.StatusGone)
	}))
	defer target.Close()
	rulesDir := t.TempDir()
	writeFile(t, filepath.Join(rulesDir, "crm.yaml"), fmt.Sprintf("rules:\n  - name: crm\n    actions:\n      - webhook: { url: %q }\n", target.URL))
	listen, adminAddr := freePort(t), freePort(t)
	start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", adminAddr,
		"--rules", rulesDir, "--data", t.TempDir(), "--log-level", "error")
	waitReady(t, adminAddr)
	if status, reply := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", callbacks.Must("friend_add_forced_by_admin.json")); status != 200 {
		t.Fatalf("callback: %d %s", status, reply)
	}
	env := []string{"FRIENDFLOW_ADMIN_URL=http://" + adminAddr}
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, out, _ = runBinary(t, env, "dlq", "list"); strings.Contains(out, "1 dead letters") {
			break
		}
	}
	if !strings.Contains(out, "1 dead letters") {
		t.Fatalf("no dead letter to protect:\n%s", out)
	}
	code, out, errOut := runBinary(t, append(env, "FRIENDFLOW_ALL=true", "FRIENDFLOW_JSON=true"), "dlq", "drop")
	if code != 2 || !strings.Contains(errOut, "needs job ids, a filter") {
		t.Fatalf("dlq drop with FRIENDFLOW_ALL=true: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ = runBinary(t, append(env, "FRIENDFLOW_JSON=true"), "dlq", "list"); !strings.Contains(out, "1 dead letters") {
		t.Fatalf("after dlq drop with FRIENDFLOW_ALL=true (FRIENDFLOW_JSON ignored too):\n%s", out)
	}
	// --help lists env twins for the admin client's flags only.
	_, out, _ = runBinary(t, nil, "dlq", "drop", "--help")
	if !strings.Contains(out, "env FRIENDFLOW_ADMIN_URL") || strings.Contains(out, "FRIENDFLOW_ALL") {
		t.Fatalf("dlq --help:\n%s", out)
	}
}
