package admin

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
)

// Server serves the operator endpoints on their own listener (loopback by
// default): health, readiness, and whatever the other components mount.
type Server struct {
	mux      *http.ServeMux
	draining atomic.Bool
	mu       sync.RWMutex
	checks   []check
	guard    atomic.Pointer[guard]
	auth     *authThrottle
}

type check struct {
	name string
	fn   func() error
}

// New returns a Server serving GET /healthz and GET /readyz, guarded by
// the zero Guard until SetGuard.
func New() *Server {
	a := &Server{mux: http.NewServeMux(), auth: newAuthThrottle()}
	a.SetGuard(Guard{})
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Health{Status: "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	return a
}

// Handle mounts h on the admin mux (a net/http ServeMux pattern).
func (a *Server) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// AddCheck adds a readiness condition: /readyz fails while fn returns an error.
func (a *Server) AddCheck(name string, fn func() error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, check{name, fn})
}

// SetDraining makes /readyz fail from now on, so load balancers stop
// sending callbacks before the listener closes.
func (a *Server) SetDraining() { a.draining.Store(true) }

// Ready returns the failing readiness conditions by name; empty when ready.
func (a *Server) Ready() map[string]string {
	failing := map[string]string{}
	if a.draining.Load() {
		failing["draining"] = "shutting down"
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, c := range a.checks {
		if err := c.fn(); err != nil {
			failing[c.name] = err.Error()
		}
	}
	return failing
}

func (a *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if failing := a.Ready(); len(failing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, Readiness{Failing: failing, Status: "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, Readiness{Status: "ready"})
}

// ServeHTTP implements http.Handler: every request passes the Guard
// (guard.go) before its route.
func (a *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.serveGuarded(w, r) }

// writeError answers a failed request with an ErrorBody.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // read by people and tools, never embedded in HTML
	_ = enc.Encode(v)
}
