package main

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// adminMaxConnections bounds the admin listener's open connections: the
// probes, a Prometheus scrape, an operator's console and CLI need a few;
// a flood of keep-alive probes must not take the descriptors and memory
// the callback listener and the store need.
const adminMaxConnections = 64

// Under pressure (every slot taken), a connection that holds its slot
// doing nothing is closed: at once when it is idle between requests, and
// after newConnGrace when it has sent no request yet (Tencent sends its
// request as soon as it connects). evictEvery is how often a full
// listener looks again while it waits for a slot.
const (
	newConnGrace = time.Second
	evictEvery   = 100 * time.Millisecond
)

// slotListener serves at most cap(sem) connections at once; beyond that,
// connections wait in the kernel's accept queue and hold no descriptor of
// ours. Unlike netutil.LimitListener, a full slotListener makes room: the
// connections that hold a slot without a request in progress (keep-alive
// idle, or connected and silent) are closed, so that idle sockets, however
// many, cannot keep the next caller waiting. Its ConnState must be set as
// the http.Server's ConnState.
type slotListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	stop sync.Once

	mu    sync.Mutex
	conns map[*slotConn]struct{} // open, each with its state
	now   func() time.Time
}

func newSlotListener(ln net.Listener, max int) *slotListener {
	return &slotListener{Listener: ln, sem: make(chan struct{}, max), done: make(chan struct{}),
		conns: map[*slotConn]struct{}{}, now: time.Now}
}

// Accept waits for a slot, making room when every slot is taken, then
// accepts the next connection.
func (l *slotListener) Accept() (net.Conn, error) {
	if !l.acquire() {
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	sc := &slotConn{Conn: c, l: l, accepted: l.now()}
	sc.state.Store(int32(http.StateNew))
	l.mu.Lock()
	l.conns[sc] = struct{}{}
	l.mu.Unlock()
	return sc, nil
}

func (l *slotListener) acquire() bool {
	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTicker(evictEvery)
	defer t.Stop()
	for {
		l.evict()
		select {
		case l.sem <- struct{}{}:
			return true
		case <-l.done:
			return false
		case <-t.C:
		}
	}
}

// evict closes the connections that hold a slot without a request in
// progress.
func (l *slotListener) evict() {
	now := l.now()
	var idle []*slotConn
	l.mu.Lock()
	for c := range l.conns {
		s := http.ConnState(c.state.Load())
		if s == http.StateIdle || s == http.StateNew && now.Sub(c.accepted) >= newConnGrace {
			idle = append(idle, c)
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// Full says whether every slot is taken: the admin listener then asks
// each client to close its connection after the reply.
func (l *slotListener) Full() bool { return len(l.sem) == cap(l.sem) }

// ConnState tracks the state of each connection; it is the http.Server's
// ConnState. It runs twice per request (active, then idle), so it takes no
// lock and reads no clock: only a new connection's age matters (evict),
// and that is its accept time.
func (l *slotListener) ConnState(c net.Conn, s http.ConnState) {
	sc, ok := c.(*slotConn)
	if !ok || s == http.StateClosed || s == http.StateHijacked {
		return
	}
	sc.state.Store(int32(s))
}

func (l *slotListener) Close() error {
	l.stop.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slotConn gives its slot back when it is closed, once.
type slotConn struct {
	net.Conn
	l        *slotListener
	once     sync.Once
	accepted time.Time
	state    atomic.Int32 // its http.ConnState
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.sem
	})
	return err
}

// closeUnlessCallback asks the client to close its connection after any
// reply but to a callback: a 404 or a wrong method must not leave an idle
// connection behind that holds a callback slot. (The Receiver closes the
// connections of the callbacks it rejects.)
func closeUnlessCallback(callbackPath string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != callbackPath {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// closeWhenFull asks the client to close its connection after the reply
// while every slot of ln is taken.
func closeWhenFull(ln *slotListener, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ln.Full() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// listenSlots listens on addr and serves h there with at most max
// connections at once (slotListener); wrap adapts the handler to the
// listener.
func listenSlots(addr string, max int, srv *http.Server, wrap func(*slotListener, http.Handler) http.Handler) (*slotListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	sl := newSlotListener(ln, max)
	srv.ConnState = sl.ConnState
	srv.Handler = wrap(sl, srv.Handler)
	return sl, nil
}
