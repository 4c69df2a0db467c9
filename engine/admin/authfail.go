package admin

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Failed admin authentications (a wrong token presented as a bearer
// token, the console cookie or the sign-in form) are logged, counted, and
// slowed per client: each client IP may fail authFailBurst times, then
// once per authFailEvery; beyond that its requests that need the token get
// 429 with Retry-After, without the token being looked at. Guessing the
// token goes from thousands of tries a second to one.
const (
	authFailEvery = time.Second
	authFailBurst = 10
	// authClients bounds the clients tracked; when full, the idle ones
	// (their budget refilled) are forgotten, then, if none is, all.
	authClients = 4096
	// The "admin authentication failed" lines: at most authLogRate a
	// second, bursts of authLogBurst.
	authLogRate  = 10
	authLogBurst = 20
)

// authThrottle is the per-client bookkeeping of failed authentications.
type authThrottle struct {
	mu      sync.Mutex
	clients map[string]*rate.Limiter
	now     func() time.Time

	logs       *rate.Limiter
	suppressed atomic.Int64
	cfg        atomic.Pointer[authHooks]
}

// authHooks are the Guard's Failed, Suppressed and Logger.
type authHooks struct {
	failed, suppressed func()
	log                *slog.Logger
}

func newAuthThrottle() *authThrottle {
	t := &authThrottle{clients: map[string]*rate.Limiter{}, now: time.Now,
		logs: rate.NewLimiter(authLogRate, authLogBurst)}
	t.cfg.Store(&authHooks{})
	return t
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited refuses r with 429 when its client has no failures left; it
// says whether it did.
func (t *authThrottle) limited(w http.ResponseWriter, r *http.Request) bool {
	t.mu.Lock()
	lim := t.clients[clientIP(r)]
	var wait time.Duration
	if lim != nil && lim.TokensAt(t.now()) < 1 {
		wait = lim.ReserveN(t.now(), 0).DelayFrom(t.now()) + authFailEvery
	}
	t.mu.Unlock()
	if wait == 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed authentications from this address; retry later"})
	return true
}

// failed records a failed authentication of r (where: what was checked).
func (t *authThrottle) failed(r *http.Request, where string) {
	ip := clientIP(r)
	now := t.now()
	t.mu.Lock()
	lim := t.clients[ip]
	if lim == nil {
		if len(t.clients) >= authClients {
			t.forget(now)
		}
		lim = rate.NewLimiter(rate.Every(authFailEvery), authFailBurst)
		t.clients[ip] = lim
	}
	lim.AllowN(now, 1)
	t.mu.Unlock()

	h := t.cfg.Load()
	if h.failed != nil {
		h.failed()
	}
	if !t.logs.Allow() {
		t.suppressed.Add(1)
		if h.suppressed != nil {
			h.suppressed()
		}
		return
	}
	log := h.log
	if log == nil {
		log = slog.Default()
	}
	attrs := []any{"remote", ip, "where", where, "path", quote(r.URL.Path)}
	if n := t.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, "suppressed_before", n)
	}
	log.Warn("admin authentication failed: wrong token", attrs...)
}

// forget drops the clients whose budget has refilled, or all of them if
// none has. Callers hold mu.
func (t *authThrottle) forget(now time.Time) {
	for ip, lim := range t.clients {
		if lim.TokensAt(now) >= authFailBurst {
			delete(t.clients, ip)
		}
	}
	if len(t.clients) >= authClients {
		clear(t.clients)
	}
}
