package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Guard is what every admin request passes before it reaches a route,
// present or future: a Host check against DNS rebinding, a bearer token,
// and a cross-origin (CSRF) check on writes. The zero Guard checks Host and
// cross-origin writes and requires no token.
type Guard struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// route but the probes.
	Token []byte
	// Hosts are names, besides loopback and the listener's own IP, that a
	// request's Host may carry: the names of a Service in front of the
	// listener. A name matches with any port.
	Hosts []string
	// Failed, when set, counts each failed authentication (a wrong token);
	// Suppressed each of their log lines left out by rate limiting.
	// Logger writes those lines (nil: slog.Default).
	Failed, Suppressed func()
	Logger             *slog.Logger
}

// probes answer without a token and whatever the Host: the kubelet and
// Prometheus reach them by pod IP or through a Service name, and they
// show nothing a token protects.
var probes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// SetGuard replaces the checks every request but a probe passes.
func (a *Server) SetGuard(g Guard) {
	a.guard.Store(newGuard(g))
	a.auth.cfg.Store(&authHooks{failed: g.Failed, suppressed: g.Suppressed, log: g.Logger})
}

func newGuard(g Guard) *guard {
	hosts := make(map[string]bool, len(g.Hosts))
	for _, h := range g.Hosts {
		hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	return &guard{tokenOK: TokenChecker(g.Token), hosts: hosts, cop: http.NewCrossOriginProtection()}
}

// TokenChecker returns a constant-time check of a presented token against
// token: both sides are hashed first, so that not even the token's length
// shows in the timing. It is nil when token is empty: nothing to check.
func TokenChecker(token []byte) func(string) bool {
	if len(token) == 0 {
		return nil
	}
	want := sha256.Sum256(token)
	return func(got string) bool {
		sum := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
}

// guard is a Guard prepared for serving.
type guard struct {
	tokenOK func(string) bool // nil: no token required
	hosts   map[string]bool
	cop     *http.CrossOriginProtection
}

// check returns the status and message that refuse r, or 0 to let it
// through. The order matters: a request from a rebinding page is refused
// for its Host before its token is looked at, and an unauthenticated one
// learns nothing about the origin rules.
// A status of -1 means the reply was written (a client slowed down after
// failed authentications).
func (g *guard) check(w http.ResponseWriter, r *http.Request, auth *authThrottle) (int, string) {
	if probes[r.URL.Path] && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return 0, ""
	}
	if !g.hostAllowed(r) {
		return http.StatusMisdirectedRequest, "Host " + quote(r.Host) +
			" is not an address of this admin listener; a name in front of it must be allowed with --admin-host"
	}
	// The console's pages check the token themselves (Console.CheckToken),
	// from its sign-in cookie as well as a bearer token, and take
	// same-origin form posts: a browser cannot send a bearer token or a
	// JSON body from a plain HTML form.
	console := consolePage(r.URL.Path)
	if !console && g.tokenOK != nil {
		if auth.limited(w, r) {
			return -1, ""
		}
		if tok, ok := bearerToken(r); !ok || !g.tokenOK(tok) {
			if ok {
				auth.failed(r, "bearer token")
			}
			return http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN, the content of --admin-token-file"
		}
	}
	if err := g.cop.Check(r); err != nil {
		return http.StatusForbidden, "cross-origin write refused: " + err.Error()
	}
	if !console && !safeMethod(r.Method) && !preflighted(r) {
		return http.StatusUnsupportedMediaType, "a write takes no body, or one whose Content-Type a browser cannot send across origins " +
			"(application/json, application/x-tar, application/yaml), not a form or text/plain"
	}
	return 0, ""
}

// hostAllowed is the DNS-rebinding check: a page that rebinds its own name
// to this address still sends its own name as Host. Loopback names and IPs
// pass with any port (kubectl port-forward picks the local port), as does
// the IP the connection arrived on (a client that dials the pod IP) and
// the configured names.
func (g *guard) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false // HTTP/1.0 without Host: nothing to check against
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || g.hosts[host] {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lh, _, err := net.SplitHostPort(local.String())
	return err == nil && net.ParseIP(lh).Equal(ip)
}

// bearerToken is the token of an Authorization: Bearer header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// consolePage says whether path is one of the console's pages (Console.Mount).
func consolePage(path string) bool { return path == "/" || strings.HasPrefix(path, "/ui/") }

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// preflighted says whether a write's body is one a browser cannot send
// to another origin without a CORS preflight, which this API never grants:
// no body, or a Content-Type other than the three CORS-safelisted ones
// (https://fetch.spec.whatwg.org/#cors-safelisted-request-header). A body
// without a Content-Type is refused too: fetch sends a Blob without one.
func preflighted(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return false
	}
	return true
}

// quote shows a caller's value safely: escaped, and short.
func quote(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strconv.Quote(s)
}

// serveGuarded runs the guard, then the route.
func (a *Server) serveGuarded(w http.ResponseWriter, r *http.Request) {
	if status, msg := a.guard.Load().check(w, r, a.auth); status != 0 {
		if status < 0 {
			return
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="friendflow admin"`)
		}
		writeError(w, status, msg)
		return
	}
	a.mux.ServeHTTP(w, r)
}
