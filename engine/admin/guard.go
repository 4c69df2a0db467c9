package admin

import (
	"crypto/sha256"
	"crypto/subtle"
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
}

// probes answer without a token and whatever the Host: the kubelet and
// Prometheus reach them by pod IP or through a Service name, and they
// show nothing a token protects.
var probes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// SetGuard replaces the checks every request but a probe passes.
func (a *Server) SetGuard(g Guard) { a.guard.Store(newGuard(g)) }

func newGuard(g Guard) *guard {
	hosts := make(map[string]bool, len(g.Hosts))
	for _, h := range g.Hosts {
		hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	out := &guard{hosts: hosts, cop: http.NewCrossOriginProtection()}
	if len(g.Token) > 0 {
		sum := sha256.Sum256(g.Token)
		out.token = sum[:]
	}
	return out
}

// guard is a Guard prepared for serving.
type guard struct {
	token []byte // sha256 of the token; nil: none required
	hosts map[string]bool
	cop   *http.CrossOriginProtection
}

// check returns the status and message that refuse r, or 0 to let it
// through. The order matters: a request from a rebinding page is refused
// for its Host before its token is looked at, and an unauthenticated one
// learns nothing about the origin rules.
func (g *guard) check(r *http.Request) (int, string) {
	if probes[r.URL.Path] && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return 0, ""
	}
	if !g.hostAllowed(r) {
		return http.StatusMisdirectedRequest, "Host " + quote(r.Host) +
			" is not an address of this admin listener; a name in front of it must be allowed with --admin-host"
	}
	if g.token != nil && !g.authorized(r) {
		return http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN, the content of --admin-token-file"
	}
	if err := g.cop.Check(r); err != nil {
		return http.StatusForbidden, "cross-origin write refused: " + err.Error()
	}
	if !safeMethod(r.Method) && !jsonBody(r) {
		return http.StatusUnsupportedMediaType, "a write takes no body or a JSON body (Content-Type: application/json)"
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

// authorized compares the bearer token in constant time; both sides are
// hashed first so that not even the token's length shows in the timing.
func (g *guard) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], g.token) == 1
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// jsonBody says whether a write's body is JSON or absent: a browser can
// send text/plain, form and multipart bodies across origins without a
// preflight, never application/json.
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
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
	if status, msg := a.guard.Load().check(r); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="friendflow admin"`)
		}
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	a.mux.ServeHTTP(w, r)
}
