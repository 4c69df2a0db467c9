package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples"
	"github.com/friendflow/friendflow/examples/callbacks"
)

// binary is the real friendflow, built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "friendflow-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "friendflow")
	// In-process serves read no container limit: the test process's
	// memory limit stays as it is (memlimit_test.go sets its own).
	cgroupRoot = filepath.Join(dir, "no-cgroup")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building friendflow: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running friendflow whose log lines are collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = p.cmd.Wait()
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func waitReady(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("friendflow on %s never became ready", admin)
}

func TestServeEndToEndSignedCallback(t *testing.T) {
	listen, admin := freePort(t), freePort(t)
	const token = "e2e-token-9f8e7d"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const imKey = "im-secret-key-5bd2850fff3ecb11"
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000", "FRIENDFLOW_LOG_LEVEL=debug", "FRIENDFLOW_IM_SECRET_KEY=" + imKey},
		"serve", "--listen", listen, "--admin-listen", admin, "--callback-token-file", tokenFile,
		"--rules", exampleRules(t), "--data", t.TempDir())
	waitReady(t, admin)

	body := callbacks.Must("friend_add_forced_by_admin.json")
	post := func(rt int64, sign string) (int, map[string]any) {
		q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "contenttype": {"json"},
			"ClientIP": {"127.0.0.1"}, "OptPlatform": {"RESTAPI"}, "RequestTime": {strconv.FormatInt(rt, 10)}, "Sign": {sign}}
		resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("reply %q", raw)
		}
		return resp.StatusCode, r
	}
	rt := time.Now().Unix()
	sum := sha256.Sum256([]byte(token + strconv.FormatInt(rt, 10)))
	status, r := post(rt, hex.EncodeToString(sum[:]))
	if status != 200 || r["ActionStatus"] != "OK" || r["ErrorCode"] != 0.0 || r["ErrorInfo"] != "" {
		t.Fatalf("signed callback: %d %v", status, r)
	}
	status, r = post(rt, strings.Repeat("0", 64))
	if status != 401 || r["ActionStatus"] != "FAIL" {
		t.Fatalf("forged callback: %d %v", status, r)
	}

	// SIGTERM: readiness off, listener closed, exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs())
	}
	logs := p.logs()
	for _, want := range []string{`"msg":"callback accepted"`, `"msg":"callback rejected"`, `"reason":"sign_bad"`, `"msg":"friendflow stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, token) || strings.Contains(logs, imKey) {
		t.Error("a secret appears in the logs")
	}
	if _, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		t.Error("callback listener still open after exit")
	}
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"serve"}, "--sdkappid (FRIENDFLOW_SDKAPPID) is required"},
		{[]string{"FRIENDFLOW_SDKAPPID=abc"}, []string{"serve"}, `invalid value "abc" for --sdkappid (FRIENDFLOW_SDKAPPID)`},
		{nil, []string{"serve", "--sdkappid", "x"}, "--sdkappid (FRIENDFLOW_SDKAPPID)"},
		{nil, []string{"serve", "--sdkappid", "1", "--log-format", "xml"}, "--log-format (FRIENDFLOW_LOG_FORMAT) must be json or text"},
		{nil, []string{"serve", "--sdkappid", "1", "--log-level", "loud"}, "--log-level (FRIENDFLOW_LOG_LEVEL)"},
		{nil, []string{"serve", "--sdkappid", "1", "--callback-max-skew", "-1s"}, "--callback-max-skew (FRIENDFLOW_CALLBACK_MAX_SKEW) must be a positive"},
		{nil, []string{"serve", "--sdkappid", "1", "--callback-path", "cb"}, "--callback-path (FRIENDFLOW_CALLBACK_PATH) must start with /"},
		{[]string{"FRIENDFLOW_CALLBACK_TOKEN=a", "FRIENDFLOW_CALLBACK_TOKEN_FILE=/nonexistent"}, []string{"serve", "--sdkappid", "1"}, "are both set"},
		{nil, []string{"serve", "--sdkappid", "1", "--callback-token-file", "/nonexistent/token"}, "--callback-token-file (FRIENDFLOW_CALLBACK_TOKEN_FILE)"},
		{nil, []string{"serve", "--sdkappid", "1", "--listen", "nope"}, "--listen (FRIENDFLOW_LISTEN)"},
		{nil, []string{"serve", "--bogus"}, "unknown flag --bogus"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-namespace", "Team.A"}, `--nats-namespace (FRIENDFLOW_NATS_NAMESPACE): namespace "Team.A": want 1 to 32 of a-z`},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-creds", "main_test.go"}, "--nats-creds (FRIENDFLOW_NATS_CREDS) applies to an external cluster: set --nats-url (FRIENDFLOW_NATS_URL)"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-url", "nats://127.0.0.1:1", "--nats-user", "ff"}, "--nats-user (FRIENDFLOW_NATS_USER) needs --nats-password-file (FRIENDFLOW_NATS_PASSWORD_FILE)"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-url", "nats://127.0.0.1:1", "--nats-creds", "main_test.go", "--nats-nkey", "main_test.go"}, "use one of --nats-creds (FRIENDFLOW_NATS_CREDS)"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-url", "nats://127.0.0.1:1", "--nats-tls-cert", "main_test.go"}, "--nats-tls-cert (FRIENDFLOW_NATS_TLS_CERT) and --nats-tls-key (FRIENDFLOW_NATS_TLS_KEY) go together"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-url", "nats://127.0.0.1:1", "--nats-tls-ca", "/nonexistent/ca.pem"}, "--nats-tls-ca (FRIENDFLOW_NATS_TLS_CA): stat /nonexistent/ca.pem"},
		{nil, []string{"serve", "--sdkappid", "1", "--dlq-max-bytes", "12XB"}, `invalid value "12XB" for --dlq-max-bytes (FRIENDFLOW_DLQ_MAX_BYTES)`},
		{nil, []string{"serve", "--sdkappid", "1", "--dlq-max-bytes", "1MiB"}, "--dlq-max-bytes (FRIENDFLOW_DLQ_MAX_BYTES) must be at least 16MiB, got 1MiB"},
		{[]string{"FRIENDFLOW_DLQ_MAX_AGE=0s"}, []string{"serve", "--sdkappid", "1"}, "--dlq-max-age (FRIENDFLOW_DLQ_MAX_AGE) must be a positive duration"},
		// One row per check of each concern (serveflags.go), as they were worded.
		{nil, []string{"serve", "--sdkappid", "1", "extra"}, `unexpected argument "extra"`},
		{nil, []string{"serve", "--sdkappid", "1", "--admin-listen", "9090"}, `--admin-listen (FRIENDFLOW_ADMIN_LISTEN): "9090" is not host:port`},
		{nil, []string{"serve", "--sdkappid", "1", "--max-connections", "0"}, "--max-connections (FRIENDFLOW_MAX_CONNECTIONS) must be at least 1, got 0"},
		{nil, []string{"serve", "--sdkappid", "1", "--shutdown-timeout", "0s"}, "--shutdown-timeout (FRIENDFLOW_SHUTDOWN_TIMEOUT) must be a positive duration, got 0s"},
		{nil, []string{"serve", "--sdkappid", "1", "--admin-listen", "0.0.0.0:9090"}, "--admin-listen (FRIENDFLOW_ADMIN_LISTEN) 0.0.0.0:9090 is not a loopback address"},
		{nil, []string{"serve", "--sdkappid", "1", "--rules", ""}, "--rules (FRIENDFLOW_RULES) must name a directory or file"},
		{nil, []string{"serve", "--sdkappid", "1", "--reload-interval", "0s"}, "--reload-interval (FRIENDFLOW_RELOAD_INTERVAL) must be a positive duration"},
		{nil, []string{"serve", "--sdkappid", "1", "--data", ""}, "--data (FRIENDFLOW_DATA) must name a directory (or set --nats-url (FRIENDFLOW_NATS_URL))"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-replicas", "6"}, "--nats-replicas (FRIENDFLOW_NATS_REPLICAS) must be 1 to 5, got 6"},
		{nil, []string{"serve", "--sdkappid", "1", "--nats-replicas", "3"}, "--nats-replicas (FRIENDFLOW_NATS_REPLICAS) above 1 needs a cluster"},
		{nil, []string{"serve", "--sdkappid", "1", "--sync", "never"}, `--sync (FRIENDFLOW_SYNC) must be default or always, got "never"`},
		{nil, []string{"serve", "--sdkappid", "1", "--workers", "0"}, "--workers (FRIENDFLOW_WORKERS) must be at least 1, got 0"},
		{nil, []string{"serve", "--sdkappid", "1", "--im-endpoint", "mars"}, "--im-endpoint (FRIENDFLOW_IM_ENDPOINT): "},
		{nil, []string{"serve", "--sdkappid", "1", "--im-admin", ""}, "--im-admin (FRIENDFLOW_IM_ADMIN) must not be empty"},
		{nil, []string{"serve", "--sdkappid", "1", "--im-rate", "0"}, "--im-rate (FRIENDFLOW_IM_RATE) must be positive, got 0"},
		{nil, []string{"serve", "--sdkappid", "1", "--im-batch-recipients", "1"}, "--im-batch-recipients (FRIENDFLOW_IM_BATCH_RECIPIENTS) must be more than"},
		{nil, []string{"serve", "--sdkappid", "1", "--decision-timeout", "2s"}, "--decision-timeout (FRIENDFLOW_DECISION_TIMEOUT) must stay below Tencent's 2s callback timeout, got 2s"},
		{nil, []string{"serve", "--sdkappid", "1", "--decision-fail", "maybe"}, `--decision-fail (FRIENDFLOW_DECISION_FAIL) must be open or closed, got "maybe"`},
		{nil, []string{"serve", "--sdkappid", "1", "--decision-fail-code", "40000"}, "--decision-fail-code (FRIENDFLOW_DECISION_FAIL_CODE) must be in 38000-39000, got 40000"},
		{nil, []string{"serve", "--sdkappid", "1", "--record-events", "-1"}, "--record-events (FRIENDFLOW_RECORD_EVENTS) must be 0 (off) or more, got -1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := map[string]string{}
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			code := run(tt.args, &stdout, &stderr, func(k string) string { return env[k] })
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("stderr %q, want one line containing %q", out, tt.want)
			}
		})
	}
}

// exampleRules returns a copy of the rule files the repository ships
// (examples/rules), so that a rule file an operator adds there, as the
// quick start invites, cannot fail the tests.
func exampleRules(t *testing.T) string {
	t.Helper()
	dir, err := examples.CopyRules(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// parseServe parses and checks serve's command line as `friendflow serve`
// does.
func parseServe(args []string, getenv func(string) string) (*serveConfig, error) {
	fs := newFlagSet("serve")
	f := new(serveFlags)
	f.declare(fs)
	pos, cmdline, err := parseArgsFrom(fs, args, getenv)
	if err != nil {
		return nil, err
	}
	return f.config(pos, cmdline)
}

func TestFlagsWinOverEnv(t *testing.T) {
	env := map[string]string{"FRIENDFLOW_SDKAPPID": "1", "FRIENDFLOW_LOG_FORMAT": "text"}
	c, err := parseServe([]string{"--log-format", "json"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.SdkAppid != 1 || c.LogFormat != "json" {
		t.Fatalf("got %+v", c)
	}
}

func TestSecretFlagWinsOverEnvFile(t *testing.T) {
	env := map[string]string{"FRIENDFLOW_SDKAPPID": "1", "FRIENDFLOW_CALLBACK_TOKEN_FILE": "/nonexistent"}
	c, err := parseServe([]string{"--callback-token", "from-flag"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if string(c.CallbackToken) != "from-flag" {
		t.Fatalf("token %q", c.CallbackToken)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env = map[string]string{"FRIENDFLOW_SDKAPPID": "1", "FRIENDFLOW_CALLBACK_TOKEN": "from-env"}
	c, err = parseServe([]string{"--callback-token-file", file}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if string(c.CallbackToken) != "from-file" {
		t.Fatalf("token %q", c.CallbackToken)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, io.Discard, func(string) string { return "" }); code != 0 {
		t.Fatal(code)
	}
	if s := out.String(); !strings.Contains(s, "friendflow ") || !strings.Contains(s, "commit ") || !strings.Contains(s, "go1.") {
		t.Fatalf("version output %q", s)
	}
}
