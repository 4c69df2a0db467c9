package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im/imtest"
	"github.com/friendflow/friendflow/actions/webhooktest"
	"github.com/friendflow/friendflow/engine/imcallback"
)

// writeRule writes one rule file into a new rules directory.
func writeRule(t *testing.T, rule string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// postCallback posts body as an unsigned callback of command and returns
// the status and the reply.
func postCallback(t *testing.T, client *http.Client, listen, command string, body []byte) (int, string) {
	t.Helper()
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {command}, "contenttype": {"json"}}
	resp, err := client.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestReplayedCallbackKeepsItsDeliveryID posts one signed callback three
// times, as a replay or a proxy retrying would: an after-callback, which
// carries no EventTime, and a before-callback, which does. The webhook
// receiver sees three requests of each with one X-Friendflow-Delivery id
// per callback, so it can drop the copies, and the fake IM sees three
// sendmsg requests of each with one MsgRandom and MsgSeq, which its dedup
// (Tencent's) takes for one message. A fourth callback, another event
// about the same pair in the same second (another ClientCmd), gets ids of
// its own: a receiver dropping copies must not drop it. Every request
// verifies with an implementation of the Standard Webhooks specification
// independent of friendflow's (actions/webhooktest), its webhook-id the
// delivery id, and with the Python receiver of docs/actions.md where
// python3 is installed.
func TestReplayedCallbackKeepsItsDeliveryID(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := webhooktest.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	d := &deliveries{seen: map[string]int{}, verify: v}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fake := imtest.NewServer(t, imtest.Options{})
	cfg := fake.Config()

	rules := writeRule(t, fmt.Sprintf(`rules:
  - name: notify-crm
    on: [Sns.CallbackFriendAdd, Sns.CallbackPrevFriendAdd]
    actions:
      - webhook: { url: "http://%s/hook", secret: %s }
      - im.send: { to: "${ To_Account }", text: "hi" }
`, ln.Addr(), secret))
	listen, admin := freePort(t), freePort(t)
	const token = "replay-token-3"
	start(t, []string{"FRIENDFLOW_CALLBACK_TOKEN=" + token, "FRIENDFLOW_IM_SECRET_KEY=" + cfg.SecretKey},
		"serve", "--sdkappid", fmt.Sprint(cfg.SDKAppID), "--listen", listen, "--admin-listen", admin,
		"--im-endpoint", cfg.Endpoint, "--im-admin", cfg.Admin,
		"--rules", rules, "--data", t.TempDir(), "--log-level", "warn")
	waitReady(t, admin)

	rt := fmt.Sprint(time.Now().Unix())
	post := func(command, body string) {
		q := url.Values{"SdkAppid": {fmt.Sprint(cfg.SDKAppID)}, "CallbackCommand": {command}, "contenttype": {"json"},
			"RequestTime": {rt}, "Sign": {imcallback.Sign([]byte(token), rt)}}
		resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), `"OK"`) {
			t.Fatalf("%s: %d %s", command, resp.StatusCode, raw)
		}
	}
	for _, tc := range []struct{ command, body string }{
		{"Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0}`},
		{"Sns.CallbackPrevFriendAdd", `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"carol","From_Account":"carol","FriendItem":[{"To_Account":"dave","AddSource":"AddSource_Type_Android"}],"AddType":"Add_Type_Both","ForceAddFlags":0,"EventTime":1631777344870}`},
	} {
		for range 3 {
			// A pause, so that the copies are received in different
			// milliseconds: the id must not come from the receive time.
			time.Sleep(5 * time.Millisecond)
			post(tc.command, tc.body)
		}
	}
	// Another event about alice and bob, in the same second (the same
	// RequestTime, so the same EventTime).
	post("Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"}],"ClientCmd":"friend_response","Admin_Account":"","ForceFlag":0}`)

	deadline := time.Now().Add(20 * time.Second)
	for _, total := d.counts(); total < 7 && time.Now().Before(deadline); _, total = d.counts() {
		time.Sleep(20 * time.Millisecond)
	}
	unique, total := d.counts()
	if total != 7 || unique != 3 {
		t.Fatalf("receiver saw %d requests with %d delivery ids, want 7 with 3 (one per event)", total, unique)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := fake.WaitRequests(ctx, 7); err != nil {
		t.Fatalf("fake IM: %v (%d requests)", err, len(fake.Requests()))
	}
	ids := map[[2]uint32]int{}
	for _, m := range fake.Requests() {
		var msg struct{ MsgRandom, MsgSeq uint32 }
		if err := json.Unmarshal(m.Body, &msg); err != nil {
			t.Fatal(err)
		}
		ids[[2]uint32{msg.MsgRandom, msg.MsgSeq}]++
	}
	if len(ids) != 3 || len(fake.Messages()) != 3 || fake.Duplicates() != 4 {
		t.Fatalf("fake IM: MsgRandom/MsgSeq pairs %v, %d messages, %d duplicates; want 3 pairs (one per event), 3 messages, 4 duplicates",
			ids, len(fake.Messages()), fake.Duplicates())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.failed) > 0 || d.last == nil {
		t.Fatalf("Standard Webhooks verification failed: %q", d.failed)
	}
	verifyWithDocsPython(t, secret, d.last.Header, d.body)
}

// verifyWithDocsPython runs the Python receiver of docs/actions.md on a
// request friendflow sent; it is skipped without python3.
func verifyWithDocsPython(t *testing.T, secret string, h http.Header, body []byte) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("no python3: the docs' Python receiver is not run")
		return
	}
	doc, err := os.ReadFile("../../docs/actions.md")
	if err != nil {
		t.Fatal(err)
	}
	_, code, ok := strings.Cut(string(doc), "```python\n")
	code, _, _ = strings.Cut(code, "```")
	if !ok || !strings.Contains(code, "def verify(") {
		t.Fatal("docs/actions.md has no Python verify function")
	}
	headers := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		headers[k] = h.Get(k)
	}
	hj, _ := json.Marshal(headers)
	script := code + "\nimport json, sys\nprint(verify(sys.argv[1], json.loads(sys.argv[2]), sys.stdin.buffer.read()))\n"
	for _, c := range []struct {
		body string
		ok   bool
	}{{string(body), true}, {string(body) + " ", false}} {
		cmd := exec.Command(py, "-c", script, secret, string(hj))
		cmd.Stdin = strings.NewReader(c.body)
		out, err := cmd.CombinedOutput()
		if c.ok && (err != nil || strings.TrimSpace(string(out)) != h.Get("webhook-id")) {
			t.Fatalf("the docs' Python receiver refuses friendflow's request: %v\n%s", err, out)
		}
		if !c.ok && (err == nil || !strings.Contains(string(out), "no signature matches")) {
			t.Fatalf("the docs' Python receiver accepts a changed body: %v\n%s", err, out)
		}
	}
}

// metricValue reads one sample of the admin listener's /metrics; -1 when
// it is absent.
func metricValue(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// TestServeWarnsAndCountsUnsignedCallbacks: without --callback-token the
// start says callbacks are not authenticated and every accepted callback
// is counted; with a token neither happens.
func TestServeWarnsAndCountsUnsignedCallbacks(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("token=%v", signed), func(t *testing.T) {
			listen, admin := freePort(t), freePort(t)
			env := []string{"FRIENDFLOW_SDKAPPID=1400000000"}
			if signed {
				env = append(env, "FRIENDFLOW_CALLBACK_TOKEN=tok-7c1e")
			}
			p := start(t, env, "serve", "--listen", listen, "--admin-listen", admin,
				"--rules", exampleRules(t), "--data", t.TempDir())
			waitReady(t, admin)
			status, _ := postCallback(t, http.DefaultClient, listen, "Sns.CallbackFriendAdd", []byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b"}]}`))
			warned := strings.Contains(p.logs(), "no --callback-token: callbacks are not authenticated")
			unsigned := metricValue(t, admin, "friendflow_callbacks_unsigned_total")
			if signed {
				if status != http.StatusUnauthorized || warned || unsigned != 0 {
					t.Fatalf("with a token: status %d, warned %v, unsigned %v; want 401, no warning, 0", status, warned, unsigned)
				}
				return
			}
			if status != 200 || !warned || unsigned != 1 {
				t.Fatalf("without a token: status %d, warned %v, unsigned %v; want 200, a warning, 1\n%s", status, warned, unsigned, p.logs())
			}
		})
	}
}

// openFDs counts the file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// TestCallbackFloodLeavesAdminResponsive opens thousands of hostile
// connections to the callback listener of the real binary, half of them
// idle, half sending forged (401) requests and never reading the reply:
// the process stays within its connection limit, far from running out of
// descriptors, /readyz keeps answering, rejection logs are rate limited,
// and once the flood ends a signed callback is accepted.
func TestCallbackFloodLeavesAdminResponsive(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const hostile, maxConns = 6000, 256
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < hostile+500 {
		lim.Cur = min(lim.Max, hostile+500)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < hostile+500 {
			t.Skipf("need %d descriptors, have %d (%v)", hostile+500, lim.Cur, err)
		}
	}
	listen, admin := freePort(t), freePort(t)
	const token = "flood-token-1"
	p := start(t, []string{"FRIENDFLOW_CALLBACK_TOKEN=" + token}, "serve", "--sdkappid", "1400000000",
		"--listen", listen, "--admin-listen", admin, "--max-connections", fmt.Sprint(maxConns),
		"--rules", exampleRules(t), "--data", t.TempDir())
	waitReady(t, admin)
	base := openFDs(t, p.cmd.Process.Pid)

	forged := []byte("POST /callback?SdkAppid=1400000000&CallbackCommand=Sns.CallbackFriendAdd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	var (
		mu     sync.Mutex
		conns  []net.Conn
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 128)
		failed atomic.Int32
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	floodStart := time.Now()
	for i := range hostile {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", listen, 3*time.Second)
			if err != nil {
				failed.Add(1) // the kernel's accept queue is full: turned away before us
				return
			}
			if i%2 == 0 {
				_, _ = c.Write(forged)
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("%d hostile connections open, %d dials turned away", len(conns), failed.Load())
	if len(conns) < hostile/2 {
		t.Fatalf("only %d connections opened", len(conns))
	}

	// Under the flood: the admin listener answers at once, and the process
	// holds about maxConns connections, not thousands.
	fds := openFDs(t, p.cmd.Process.Pid)
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatalf("/readyz under the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz under the flood: %d", resp.StatusCode)
	}
	t.Logf("descriptors: %d before the flood, %d during it", base, fds)
	if fds > base+maxConns+16 {
		t.Errorf("%d descriptors during the flood (%d before): the connection limit of %d did not hold", fds, base, maxConns)
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// The backlog drains (idle connections are dropped after the header
	// timeout); then a signed callback is accepted again.
	rt := fmt.Sprint(time.Now().Unix())
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "RequestTime": {rt}, "Sign": {imcallback.Sign([]byte(token), rt)}}
	var status int
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Post("http://"+listen+"/callback?"+q.Encode(), "application/json",
			strings.NewReader(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b"}]}`))
		if err == nil {
			status = resp.StatusCode
			resp.Body.Close()
			break
		}
	}
	if status != 200 {
		t.Fatalf("signed callback after the flood: status %d", status)
	}
	logs := p.logs()
	if strings.Contains(logs, "too many open files") {
		t.Error("the process ran out of file descriptors")
	}
	// The limiter lets rejectLogBurst lines through, then rejectLogRate a
	// second: the bound follows how long the flood took (longer on a
	// loaded machine), and stays far below one line per rejection.
	limit := rejectLogBurst + int(float64(rejectLogRate)*time.Since(floodStart).Seconds()) + rejectLogRate
	if n := strings.Count(logs, `"msg":"callback rejected"`); n > limit || n > hostile/10 {
		t.Errorf("%d rejection lines (at most %d within the rate): not rate limited", n, limit)
	}
	if s := metricValue(t, admin, `friendflow_log_lines_suppressed_total{line="callback_rejected"}`); s <= 0 {
		t.Errorf("suppressed rejection lines not counted (%v)", s)
	}
}

// peakRSS is the peak resident memory of process pid, in MiB.
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("cannot read the process status: %v", err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb >> 10
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// pairs is a friend-add callback body with n pairs.
func pairs(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"CallbackCommand":"Sns.CallbackFriendAdd","EventTime":1700000000000,"PairList":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"From_Account":"u%d","To_Account":"v%d","Initiator_Account":"u%d"}`, i, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestRenderedJobsBounded: 1000 pairs each rendering a megabyte would
// need gigabytes; the callback fails at once with a reason that fits the
// embedded store (no advice to raise a cluster's max_payload), memory
// stays bounded, nothing is stored, and a small callback still passes.
// An im.send text over IM's 8000 bytes fails the callback before the
// reply instead of being dead-lettered later.
func TestRenderedJobsBounded(t *testing.T) {
	rules := writeRule(t, `rules:
  - name: huge
    on: Sns.CallbackFriendAdd
    when: From_Account startsWith "u"
    actions:
      - log: { message: '${ repeat("x", 999000) }' }
  - name: long-greeting
    on: Sns.CallbackFriendAdd
    when: From_Account == "long"
    actions:
      - im.send: { to: "${ To_Account }", text: '${ repeat("y", 8001) }' }
  - name: greeting
    on: Sns.CallbackFriendAdd
    when: From_Account == "short"
    actions:
      - log: { message: "hello ${ To_Account }" }
`)
	listen, admin := freePort(t), freePort(t)
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rules, "--data", t.TempDir(), "--log-level", "warn")
	waitReady(t, admin)
	client := &http.Client{Timeout: 10 * time.Second}

	began := time.Now()
	status, reply := postCallback(t, client, listen, "Sns.CallbackFriendAdd", pairs(1000))
	took := time.Since(began)
	// The caller gets a generic FAIL; the reason is in the log.
	if status == 200 || !strings.Contains(reply, `"FAIL"`) || !strings.Contains(reply, "callback_id") || strings.Contains(reply, "embedded store") {
		t.Fatalf("1000 huge jobs: %d %s", status, reply)
	}
	waitLog(t, p, "embedded store") // why 1000 huge jobs failed
	if strings.Contains(p.logs(), "max_payload") {
		t.Fatalf("the log gives the external cluster's advice:\n%s", p.logs())
	}
	rss := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("FAIL after %v, peak RSS %d MiB: %s", took, rss, reply)
	if rss > 500 { // the race detector's shadow memory included; unbounded was gigabytes
		t.Errorf("peak RSS %d MiB", rss)
	}

	status, reply = postCallback(t, client, listen, "Sns.CallbackFriendAdd",
		[]byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"long","To_Account":"bob"}]}`))
	if status == 200 {
		t.Fatalf("an im.send text over 8000 bytes: %d %s", status, reply)
	}
	waitLog(t, p, "8000-byte")
	// Callbacks over a limit are their own fault: the replica stays ready.
	resp, err := client.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz after callbacks over the limits: %d", resp.StatusCode)
	}
	if !strings.Contains(p.logs(), "long-greeting") {
		t.Fatalf("the log does not name the rule:\n%s", p.logs())
	}

	status, reply = postCallback(t, client, listen, "Sns.CallbackFriendAdd",
		[]byte(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"short","To_Account":"bob"}]}`))
	if status != 200 {
		t.Fatalf("a small callback after: %d %s", status, reply)
	}
	if n := metricValue(t, admin, `friendflow_dead_letters`); n != 0 {
		t.Errorf("%v dead letters: a rejected callback's jobs were stored", n)
	}
}

// TestFullDiskFailsFastAndRecovers runs the real binary with its embedded
// store on a small tmpfs and fills it: callbacks get FAIL well inside
// Tencent's 2 s, /readyz turns 503 and says why, the store gauge and a log
// line too; when space is freed the process recovers by itself, /readyz
// returns 200, callbacks are accepted and their jobs run, and the queue
// gauge comes back to 0.
func TestFullDiskFailsFastAndRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a real full filesystem); .ci/run runs as root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	rules := writeRule(t, `rules:
  - name: note
    on: Sns.CallbackFriendAdd
    actions:
      - log: { level: warn, message: "added ${ To_Account }" }
`)
	listen, admin := freePort(t), freePort(t)
	p := start(t, nil, "serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rules, "--data", filepath.Join(mnt, "data"), "--log-level", "warn",
		"--dlq-max-bytes", "16MiB") // reserved from the store's room: 75% of the free space
	waitReady(t, admin)
	client := &http.Client{Timeout: 10 * time.Second}
	callback := func(i int) (int, string, time.Duration) {
		began := time.Now()
		status, reply := postCallback(t, client, listen, "Sns.CallbackFriendAdd",
			fmt.Appendf(nil, `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b%d"}]}`, i))
		return status, reply, time.Since(began)
	}
	readyz := func() (int, string) {
		resp, err := client.Get("http://" + admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if status, reply, _ := callback(0); status != 200 {
		t.Fatalf("before: %d %s", status, reply)
	}

	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()

	// The first writes may still be taken (the store writes behind its
	// ack); every reply comes within 2 s, and FAIL comes soon.
	failed := false
	for i := 1; i <= 50 && !failed; i++ {
		status, reply, took := callback(i)
		if took > 2*time.Second {
			t.Fatalf("callback %d on a full disk answered after %v: %d %s", i, took, status, reply)
		}
		failed = status != 200
		if failed && (!strings.Contains(reply, `"FAIL"`) || strings.Contains(reply, "store cannot write")) {
			t.Fatalf("callback %d on a full disk: %d %s (the reason belongs in the log only)", i, status, reply)
		}
	}
	if !failed {
		t.Fatal("50 callbacks on a full disk were all answered OK")
	}
	if status, body := readyz(); status != http.StatusServiceUnavailable || !strings.Contains(body, "no space left") {
		t.Fatalf("/readyz on a full disk: %d %s", status, body)
	}
	if v := metricValue(t, admin, "friendflow_store_writable"); v != 0 {
		t.Errorf("friendflow_store_writable %v on a full disk", v)
	}
	if !strings.Contains(p.logs(), "the store cannot write") {
		t.Error("no log line says the store cannot write")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for status, _ := readyz(); status != 200; status, _ = readyz() {
		if time.Now().After(deadline) {
			_, body := readyz()
			t.Fatalf("not ready 20 s after space was freed: %s\n%s", body, p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, reply, _ := callback(100); status != 200 {
		t.Fatalf("after recovery: %d %s", status, reply)
	}
	if v := metricValue(t, admin, "friendflow_store_writable"); v != 1 {
		t.Errorf("friendflow_store_writable %v after recovery", v)
	}
	deadline = time.Now().Add(20 * time.Second)
	for metricValue(t, admin, "friendflow_queue_jobs") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("friendflow_queue_jobs stays %v after recovery", metricValue(t, admin, "friendflow_queue_jobs"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(p.logs(), "b100") {
		t.Error("the job of the callback accepted after recovery did not run")
	}
}
