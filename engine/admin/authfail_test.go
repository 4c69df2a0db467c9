package admin

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Wrong tokens are counted and logged; after authFailBurst of them the
// client gets 429 with Retry-After, even with the right token, without
// the token being checked; the probes still answer.
func TestFailedAuthSlowedPerClient(t *testing.T) {
	f := newAdminFixture(t)
	var failed, suppressed atomic.Int64
	var logs bytes.Buffer
	f.srv.SetGuard(Guard{Token: []byte(adminToken), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Failed: func() { failed.Add(1) }, Suppressed: func() { suppressed.Add(1) }})
	f.console.CheckToken = TokenChecker([]byte(adminToken))

	wrong := map[string]string{"Authorization": "Bearer guess"}
	for i := range authFailBurst {
		if status, _, body := f.send(t, "GET", "/rules", "", wrong); status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i+1, status, body)
		}
	}
	for _, auth := range []string{"Bearer guess", "Bearer " + adminToken} {
		status, hdr, body := f.send(t, "GET", "/rules", "", map[string]string{"Authorization": auth})
		if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("after %d guesses, %q: %d %v %s", authFailBurst, auth, status, hdr, body)
		}
	}
	// The console's sign-in form and pages share the budget.
	status, _, _ := f.send(t, "POST", "/ui/login", url.Values{"token": {"guess"}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": f.admin.URL})
	if status != http.StatusTooManyRequests {
		t.Fatalf("sign-in after the guesses: %d", status)
	}
	if status, _, body := f.send(t, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("/healthz: %d %s", status, body)
	}
	if failed.Load() != authFailBurst {
		t.Errorf("%d failures counted; want %d", failed.Load(), authFailBurst)
	}
	if n := strings.Count(logs.String(), "admin authentication failed"); n != authFailBurst || strings.Contains(logs.String(), "guess") {
		t.Errorf("%d log lines (want %d), without the guessed token:\n%s", n, authFailBurst, logs.String())
	}

	// Once the budget has refilled (here: forgotten), the token works again.
	clear(f.srv.auth.clients)
	if status, _, body := f.send(t, "GET", "/rules", "", map[string]string{"Authorization": "Bearer " + adminToken}); status != 200 {
		t.Fatalf("with the token, budget refilled: %d %s", status, body)
	}
}
