package admin

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/engine"
)

const adminToken = "adm-0c1f9e-token"

// send makes one request to the fixture's admin listener with the given
// headers ("Host" sets the Host line); it returns status, headers and body.
func (f *adminFixture) send(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.admin.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

func jsonError(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error body: %q", body)
	}
	return e.Error
}

func TestGuardToken(t *testing.T) {
	f := newAdminFixture(t)
	f.srv.Handle("GET /metrics", engine.NewMetrics("test", "test").Handler())
	f.srv.SetGuard(Guard{Token: []byte(adminToken)})
	// A route mounted after the guard is set is guarded too: the console
	// and every later endpoint get the check without asking for it.
	f.srv.Handle("GET /later", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "later") }))

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/rules", ""}, {"POST", "/reload", ""}, {"POST", "/explain", `{}`},
		{"GET", "/dlq", ""}, {"POST", "/dlq/drop", `{"all":true}`}, {"POST", "/dlq/replay", `{"all":true}`},
		{"GET", "/later", ""}, {"GET", "/nonexistent", ""},
	} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + adminToken, "Bearer " + adminToken + "x", adminToken} {
			clear(f.srv.auth.clients) // not slowed down: TestFailedAuthSlowedPerClient
			h := map[string]string{"Content-Type": "application/json"}
			if auth != "" {
				h["Authorization"] = auth
			}
			status, hdr, body := f.send(t, c.method, c.path, c.body, h)
			if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%s %s with Authorization %q: %d %v %s", c.method, c.path, auth, status, hdr, body)
			}
			if msg := jsonError(t, body); strings.Contains(msg, adminToken) {
				t.Fatalf("the 401 shows the token: %s", msg)
			}
		}
	}
	ok := map[string]string{"Authorization": "Bearer " + adminToken}
	if status, _, body := f.send(t, "GET", "/rules", "", ok); status != 200 || !strings.Contains(body, "notify") {
		t.Fatalf("GET /rules with the token: %d %s", status, body)
	}
	if status, _, body := f.send(t, "GET", "/later", "", map[string]string{"Authorization": "bearer " + adminToken}); status != 200 || body != "later" {
		t.Fatalf("GET /later with the token: %d %s", status, body)
	}
	if status, _, body := f.send(t, "POST", "/reload", "", ok); status != 200 {
		t.Fatalf("POST /reload with the token: %d %s", status, body)
	}
	// Probes answer without a token, whatever the Host.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		status, _, body := f.send(t, "GET", p, "", map[string]string{"Host": "10.1.2.3:9090"})
		if status != 200 {
			t.Fatalf("probe %s without a token: %d %s", p, status, body)
		}
	}
	// ...but only their GET: a probe path is no way around the guard.
	if status, _, _ := f.send(t, "POST", "/healthz", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("POST /healthz without a token: %d", status)
	}
}

func TestGuardHost(t *testing.T) {
	f := newAdminFixture(t)
	f.srv.SetGuard(Guard{Hosts: []string{"friendflow-admin.apps.svc.cluster.local"}})
	for _, host := range []string{"attacker.example:" + port(f.admin.URL), "attacker.example", "127.0.0.1.nip.io", "0x7f000001", ""} {
		for _, c := range []struct{ method, path string }{{"GET", "/rules"}, {"POST", "/reload"}, {"GET", "/dlq"}} {
			status, _, body := f.send(t, c.method, c.path, "", map[string]string{"Host": host})
			if host == "" {
				// Go's client fills an empty Host from the URL: nothing to refuse.
				if status != 200 {
					t.Fatalf("%s %s with the URL's Host: %d %s", c.method, c.path, status, body)
				}
				continue
			}
			if status != http.StatusMisdirectedRequest || !strings.Contains(jsonError(t, body), "--admin-host") {
				t.Fatalf("%s %s with Host %q: %d %s", c.method, c.path, host, status, body)
			}
		}
	}
	for _, host := range []string{"localhost:18080", "LOCALHOST", "127.0.0.1:1", "[::1]:9090", "friendflow-admin.apps.svc.cluster.local:80", "Friendflow-Admin.apps.svc.cluster.local."} {
		if status, _, body := f.send(t, "GET", "/rules", "", map[string]string{"Host": host}); status != 200 {
			t.Fatalf("GET /rules with Host %q: %d %s", host, status, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _, body := f.send(t, "GET", p, "", map[string]string{"Host": "attacker.example"}); status != 200 {
			t.Fatalf("probe %s with any Host: %d %s", p, status, body)
		}
	}
}

// TestGuardHostListenIP: a client that dials the listener's own
// non-loopback IP (kubectl exec, a sidecar calling the pod IP) sends that
// IP as Host, which cannot come from a rebinding page.
func TestGuardHostListenIP(t *testing.T) {
	ip := nonLoopbackIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	a := New()
	a.Handle("GET /rules", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv := httptest.NewUnstartedServer(a)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/rules")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /rules with Host %s (the listener's IP): %d", ln.Addr(), resp.StatusCode)
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

func port(u string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	return p
}

// TestGuardCrossOrigin: a page in a browser on the operator's machine can
// reach a loopback listener; its writes are refused, a CLI's pass.
func TestGuardCrossOrigin(t *testing.T) {
	f := newAdminFixture(t)
	self := f.admin.URL
	refused := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
	}{
		{"form post from another site", "POST", "/dlq/drop", `{"all":true}`, map[string]string{"Origin": "http://attacker.example", "Content-Type": "application/json"}, 403},
		{"fetch marked cross-site", "POST", "/reload", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"fetch marked same-site", "POST", "/dlq/replay", `{"all":true}`, map[string]string{"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}, 403},
		{"text/plain body (no preflight)", "POST", "/dlq/drop", `{"all":true}`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"form body", "POST", "/explain", `a=b`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"multipart body", "POST", "/backtest", `x`, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415},
		{"body without a type", "POST", "/dlq/drop", `{"all":true}`, nil, 415},
	}
	for _, c := range refused {
		status, _, body := f.send(t, c.method, c.path, c.body, c.hdr)
		if status != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, status, body, c.status)
		}
		jsonError(t, body)
	}
	passed := []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"CLI: no Origin", "POST", "/reload", "", nil},
		{"same origin", "POST", "/reload", "", map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}},
		{"JSON with charset", "POST", "/explain", `{"From_Account":"a","To_Account":"b"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		{"cross-origin read", "GET", "/rules", "", map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range passed {
		if status, _, body := f.send(t, c.method, c.path, c.body, c.hdr); status != 200 {
			t.Fatalf("%s: %d %s", c.name, status, body)
		}
	}
}
