package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/internal/tracing"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
	"golang.org/x/time/rate"
)

// Rejected callbacks are logged at most this often (per second), in bursts
// of rejectLogBurst; the rest are counted in
// friendflow_log_lines_suppressed_total.
const (
	rejectLogRate  = 10
	rejectLogBurst = 20
)

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve runs the service: build it from the checked configuration, run it
// until ctx ends (a signal) or a component fails, then stop it in order.
func serve(ctx context.Context, cfg *serveConfig, stdout, stderr io.Writer, getenv func(string) string) error {
	s, err := buildServer(ctx, cfg, stdout, stderr, getenv)
	if err != nil {
		return err
	}
	defer shutdownTracer(s.tracer, s.log)
	err = s.run(ctx)
	s.stop()
	return err
}

// server is `friendflow serve`'s components. buildServer makes each from
// the configuration and those made before it, and none changes after:
// the rules and the queue first, then the engine that uses them, the admin
// API over all of them, and last the listeners.
type server struct {
	cfg      *serveConfig
	log      *slog.Logger
	metrics  *engine.Metrics
	tracer   *tracing.Tracer
	reloader *reload.Reloader
	queue    *queue.Queue
	lists    *state.Lists
	admin    *admin.Server
	counters *state.Counters // the rules' counters, in the queue's JetStream

	firstRules      <-chan struct{} // closed by the first rules load
	cbLn, adminLn   net.Listener
	cbSrv, adminSrv *http.Server
	events          *record.Log // nil: recording is off

	// Set by run for stop.
	stopBG      context.CancelFunc // ends the workers, the rule watcher and the SIGHUP loop
	workersDone chan struct{}
	hup         chan os.Signal
}

// buildServer makes every component and opens the listeners, so that a
// taken port fails the start; nothing is served yet. On an error it
// releases what it made.
func buildServer(ctx context.Context, cfg *serveConfig, stdout, stderr io.Writer, getenv func(string) string) (_ *server, err error) {
	if err := rulesPresent(cfg.Rules); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, log: newLogger(stderr, cfg.LogFormat, cfg.LogLevel)}
	deriveMemoryLimit(s.log, getenv)
	if cfg.AdminInsecure && len(cfg.AdminToken) == 0 && !loopbackAddr(cfg.AdminListen) {
		s.log.Warn("the admin API is open to anyone who reaches "+cfg.AdminListen+" (--admin-insecure): rules, reload, explain and dead letters", "admin_listen", cfg.AdminListen)
	}
	s.metrics = engine.NewMetrics(version, buildCommit())
	if s.tracer, err = tracing.FromEnv(ctx, getenv, version, stdout, s.log); err != nil {
		return nil, usagef("%v", err)
	}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	imc, err := s.imClient()
	if err != nil {
		return nil, err
	}
	registry := newRegistry(s.log, imc)
	s.reloader = s.newReloader(registry)
	ring := &recordHooks{}
	if err := s.openQueue(ctx, registry, ring, s.profiles(imc)); err != nil {
		return nil, err
	}
	if err := s.openLists(ctx); err != nil {
		return nil, err
	}
	s.events = record.New(s.queue, record.Options{Dropped: func(n int) { s.metrics.RecordDropped.Add(float64(n)) },
		Rules: s.reloader.Current, Logger: s.log})
	ring.log.Store(s.events)
	eng := s.newEngine(registry, s.events)
	receiver := s.newReceiver(eng)
	if err := s.mountAdmin(registry, s.events, imc, eng.Ready); err != nil {
		return nil, err
	}
	if err := s.listen(receiver); err != nil {
		return nil, err
	}
	return s, nil
}

// release undoes a start that failed half way: the callback listener, if
// open, then the queue, if open, then the tracer.
func (s *server) release() {
	if s.cbLn != nil {
		s.cbLn.Close()
	}
	if s.lists != nil {
		s.lists.Close()
	}
	if s.queue != nil {
		_ = s.queue.Stop(s.cfg.ShutdownTimeout)
	}
	shutdownTracer(s.tracer, s.log)
}

// imClient is the IM REST client, or nil without --im-secret-key.
func (s *server) imClient() (*im.Client, error) {
	cfg := s.cfg
	if len(cfg.IMSecretKey) == 0 {
		s.log.Warn("no --im-secret-key: im.send actions will fail permanently (dead letters) until it is set")
		return nil, nil
	}
	imc, err := im.NewClient(im.Config{
		Endpoint: cfg.IMEndpoint, SDKAppID: int64(cfg.SdkAppid), Admin: cfg.IMAdmin,
		SecretKey: string(cfg.IMSecretKey), Rate: cfg.IMRate, APIRates: cfg.IMRateAPI,
		BatchRecipients: cfg.IMBatchRecipients, Logger: s.log, Observe: s.metrics.ObserveIM,
	})
	if err != nil {
		return nil, usagef("IM client: %v", err)
	}
	return imc, nil
}

// profiles renders the profile() templates of jobs when they run, from
// IM's portrait_get, batched and cached; nil without an IM client (such
// jobs are then dead letters, like im.send's).
func (s *server) profiles(imc *im.Client) queue.Profiles {
	if imc == nil {
		return nil
	}
	return rules.NewResolver(im.NewProfiles(imc, im.ProfilesConfig{
		TTL: s.cfg.ProfileCacheTTL, Size: s.cfg.ProfileCacheSize, Observe: s.metrics.ObserveProfile, Logger: s.log,
	}), nil)
}

// newReloader watches the rule files; run loads them first.
func (s *server) newReloader(registry *actions.Registry) *reload.Reloader {
	metrics := s.metrics
	firstRules, loaded := firstLoad()
	s.firstRules = firstRules
	return &reload.Reloader{
		Path:     s.cfg.Rules,
		Options:  rules.Options{Registry: registry},
		Logger:   s.log,
		Interval: s.cfg.ReloadInterval,
		OnReload: func(set *rules.Set, err error, _ time.Duration) {
			if err != nil {
				metrics.ReloadFailed()
				return
			}
			metrics.RulesLoaded(set)
			s.prepareCounters(set)
			loaded()
		},
	}
}

// prepareCounters makes the buckets of set's counters at its load, not
// within the deadline of the first callback counted in each (a bucket
// not made here is made then).
func (s *server) prepareCounters(set *rules.Set) {
	if s.counters == nil || !set.HasCounters() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	if err := s.counters.Prepare(ctx, set.Counters()); err != nil {
		s.log.Warn("counter buckets not made at load; the first event counted in each makes it", "err", err.Error())
	}
}

// prepareTimeout bounds making the counters' buckets at a load.
const prepareTimeout = 5 * time.Second

// openQueue opens the durable queue, embedded or on a NATS cluster.
func (s *server) openQueue(ctx context.Context, registry *actions.Registry, ring *recordHooks, profiles queue.Profiles) error {
	cfg := s.cfg
	q, err := queue.Open(ctx, queue.Config{
		DataDir:      cfg.Data,
		URL:          cfg.NatsURL,
		Auth:         cfg.NatsAuth,
		TLS:          cfg.NatsTLS,
		Namespace:    cfg.NatsNamespace,
		SdkAppid:     int64(cfg.SdkAppid),
		DeadMaxAge:   cfg.DLQMaxAge,
		DeadMaxBytes: int64(cfg.DLQMaxBytes),
		RecordEvents: cfg.RecordEvents,
		RecordMaxAge: cfg.RecordMaxAge,
		Replicas:     cfg.NatsReplicas,
		SyncAlways:   cfg.Sync == "always",
		Workers:      cfg.Workers,
		Registry:     registry,
		Profiles:     profiles,
		Logger:       s.log,
		Hooks:        ring.Hooks(s.metrics.QueueHooks()),
		Tracer:       s.tracer,
	})
	if owner := (*queue.OwnerError)(nil); errors.As(err, &owner) {
		return usagef("%s is %d, but NATS namespace %q (stream %s) belongs to SdkAppid %s: give this app its own %s",
			flagRef("sdkappid"), owner.SdkAppid, owner.Namespace, owner.Stream, owner.Owner, flagRef("nats-namespace"))
	}
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	s.queue = q
	s.counters = state.NewCounters(q)
	s.counters.Observe = s.metrics.ObserveCounter
	s.metrics.WatchQueue(q.Stats)
	s.metrics.WatchStore(q.StoreError)
	return nil
}

// newEngine is the engine that matches every event against the current
// rules and stores the jobs in the queue.
func (s *server) newEngine(registry *actions.Registry, ring *record.Log) *engine.Engine {
	cfg := s.cfg
	limit, advice := s.queue.CallbackLimit()
	return &engine.Engine{
		Budget:          engine.NewJobBudget(limit, advice, registry),
		Rules:           s.reloader.Current,
		RulesLoaded:     s.firstRules,
		Queue:           s.queue,
		Logger:          s.log,
		Metrics:         s.metrics,
		Tracer:          s.tracer,
		Recorder:        recorder(ring),
		Counters:        s.counters,
		DecisionTimeout: cfg.DecisionTimeout,
		FailClosed:      cfg.DecisionFail == "closed",
		FailCode:        cfg.DecisionFailCode,
	}
}

// newReceiver checks Tencent's callbacks and hands them to eng.
func (s *server) newReceiver(eng *engine.Engine) *imcallback.Receiver {
	cfg, metrics := s.cfg, s.metrics
	receiver := &imcallback.Receiver{
		SdkAppid:   cfg.SdkAppid,
		Token:      cfg.CallbackToken,
		MaxSkew:    cfg.CallbackMaxSkew,
		MaxPairs:   cfg.MaxPairs,
		Handler:    eng,
		Logger:     s.log,
		Observe:    metrics.ObserveCallback,
		RejectLogs: rate.NewLimiter(rejectLogRate, rejectLogBurst),
		Suppressed: metrics.LogsSuppressed.WithLabelValues("callback_rejected").Inc,
	}
	if len(cfg.CallbackToken) == 0 {
		receiver.Unsigned = metrics.Unsigned.Inc
		s.log.Warn("no --callback-token: callbacks are not authenticated, anyone who reaches the callback listener can inject events; set the token of Tencent's callback authentication (counted in friendflow_callbacks_unsigned_total)",
			"listen", cfg.Listen)
	}
	return receiver
}

// mountAdmin builds the admin API: readiness (callbacksReady: the
// engine's), metrics, rules, dead letters, recorded events, the console
// and, asked for, pprof.
func (s *server) mountAdmin(registry *actions.Registry, ring *record.Log, imc *im.Client, callbacksReady func() error) error {
	cfg, reloader, q := s.cfg, s.reloader, s.queue
	adm := admin.New()
	adm.SetGuard(admin.Guard{Token: cfg.AdminToken, Hosts: cfg.AdminHosts, Logger: s.log,
		Failed: s.metrics.AdminAuthFailed.Inc, Suppressed: s.metrics.LogsSuppressed.WithLabelValues("admin_auth").Inc})
	adm.AddCheck("rules", func() error {
		if reloader.Current() == nil {
			if st := reloader.Status(); st.LastError != "" {
				return fmt.Errorf("no rules loaded: %s", st.LastError)
			}
			return engine.ErrNoRules
		}
		return nil
	})
	adm.AddCheck("queue", q.Ready)
	adm.AddCheck("store", callbacksReady)
	adm.AddCheck("lists", s.lists.Ready)
	adm.Handle("GET /metrics", s.metrics.Handler())
	admin.MountRules(adm, reloader, cfg.SdkAppid)
	admin.MountDLQ(adm, q)
	admin.MountCounters(adm, reloader, s.counters)
	admin.MountEvents(adm, ring, reloader, registry)
	admin.MountLists(adm, s.lists, reloader)
	console := &admin.Console{Version: version, Rules: reloader, Events: ring, DLQ: q, Registry: registry,
		Metrics: s.metrics.Registry, Queue: q.Stats, Logger: s.log, CheckToken: admin.TokenChecker(cfg.AdminToken),
		Lists: s.lists, Counters: s.counters}
	if imc != nil {
		console.IMRate = imc.RateStates
	}
	if err := console.Mount(adm); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if cfg.Pprof {
		mountPprof(adm)
	}
	s.admin = adm
	return nil
}

// listen opens both listeners before anything reports ready, so a taken
// port fails the start instead of a health check minutes later.
func (s *server) listen(receiver http.Handler) error {
	cfg := s.cfg
	mux := http.NewServeMux()
	mux.Handle(cfg.CallbackPath, receiver)
	s.cbSrv = httpServer(mux, s.log)
	s.adminSrv = httpServer(s.admin, s.log)
	// Each listener has its own connection limit; beyond it, connections
	// wait in the kernel's accept queue and hold no descriptor of ours, and
	// a full listener makes room by closing idle connections (connlimit.go).
	cbLn, err := listenSlots(cfg.Listen, cfg.MaxConnections, s.cbSrv, func(_ *slotListener, h http.Handler) http.Handler {
		return closeUnlessCallback(cfg.CallbackPath, h)
	})
	if err != nil {
		return fmt.Errorf("callback listener: %w", err)
	}
	s.cbLn = cbLn
	adminLn, err := listenSlots(cfg.AdminListen, adminMaxConnections, s.adminSrv, closeWhenFull)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.adminLn = adminLn
	return nil
}

// run serves callbacks and the admin API, runs the workers and loads and
// watches the rules, until ctx ends (a signal) or a component fails; that
// component's error is run's.
func (s *server) run(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	bg, stopBG := context.WithCancel(context.Background())
	s.stopBG = stopBG
	errc := make(chan error, 3)
	go func() { errc <- serveOn(s.cbSrv, s.cbLn) }()
	go func() { errc <- serveOn(s.adminSrv, s.adminLn) }()
	s.workersDone = make(chan struct{})
	go func() {
		defer close(s.workersDone)
		if err := s.queue.Run(bg); err != nil {
			errc <- fmt.Errorf("workers: %w", err)
		}
	}()
	go s.loadRules(bg)
	// SIGHUP stays caught until stop has finished: a SIGHUP during the
	// stop must not end the process by its default action.
	s.hup = make(chan os.Signal, 1)
	signal.Notify(s.hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-s.hup:
				_ = s.reloader.Reload("signal: SIGHUP")
			case <-bg.Done():
				return
			}
		}
	}()
	log.Info("friendflow started", "version", version, "listen", s.cbLn.Addr().String(),
		"callback_path", cfg.CallbackPath, "admin_listen", s.adminLn.Addr().String(),
		"sdkappid", cfg.SdkAppid, "sign_check", len(cfg.CallbackToken) > 0, "admin_token", len(cfg.AdminToken) > 0,
		"rules", cfg.Rules, "queue", queueDesc(cfg), "workers", cfg.Workers)

	select {
	case <-ctx.Done():
		log.Info("stopping: signal received")
		return nil
	case err := <-errc:
		log.Error("stopping: a component failed", "err", err)
		return err
	}
}

// loadRules loads the rules once the listeners are open, then watches
// them until ctx ends: however long the files take to load (or to be
// refused), /healthz, /readyz and /rules answer. A start with broken rules
// does not exit: the process stays up, not ready, and loads the rules as
// soon as they are fixed; the error is in the log, /rules and /readyz.
func (s *server) loadRules(ctx context.Context) {
	if err := s.reloader.Reload("start"); err != nil {
		s.log.Error("rules did not load at start; not ready until they do", "path", s.cfg.Rules)
	}
	if err := s.reloader.Watch(ctx); err != nil {
		s.log.Error("rule watcher stopped; reload with SIGHUP or POST /reload", "err", err)
	}
}

// stop shuts down in order, within --shutdown-timeout: readiness off;
// the callback listener closed and in-flight callbacks answered (their
// jobs are stored before they are); running jobs finished or returned to
// the queue, and the store closed; the background work ended; the admin
// listener closed last, so probes and metrics answer to the end.
func (s *server) stop() {
	cfg, log := s.cfg, s.log
	s.admin.SetDraining()
	stopStart := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener first, then waits for in-flight
	// callbacks, whose jobs are stored before they are answered.
	if err := s.cbSrv.Shutdown(sctx); err != nil {
		log.Warn("callback server did not stop cleanly", "err", err)
	}
	// The recording writes what it holds while the store is still open.
	s.events.Close()
	// Running jobs finish within what is left of the timeout, or go back
	// to the queue for the next start; then the store closes.
	left := max(cfg.ShutdownTimeout-time.Since(stopStart), time.Second)
	s.lists.Close()
	if err := s.queue.Stop(left); err != nil {
		log.Warn("queue did not stop cleanly", "err", err)
	}
	s.stopBG()
	<-s.workersDone
	if err := s.adminSrv.Shutdown(sctx); err != nil {
		log.Warn("admin server did not stop cleanly", "err", err)
	}
	log.Info("friendflow stopped", "took", time.Since(stopStart).String())
	signal.Stop(s.hup)
}

// shutdownTracer exports the spans still buffered before the process ends.
func shutdownTracer(t *tracing.Tracer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans not exported at stop", "err", err)
	}
}

// recorder is ring as an engine.Recorder: nil, not a nil *record.Log,
// when recording is off, so that the engine skips the call.
func recorder(ring *record.Log) engine.Recorder {
	if ring == nil {
		return nil
	}
	return ring
}

func queueDesc(cfg *serveConfig) string {
	if cfg.NatsURL != "" {
		return fmt.Sprintf("external %s (namespace %s, replicas %d)", queue.RedactURLs(cfg.NatsURL), cfg.NatsNamespace, cfg.NatsReplicas)
	}
	return "embedded in " + cfg.Data + " (namespace " + cfg.NatsNamespace + ", sync " + cfg.Sync + ")"
}

func serveOn(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// httpServer sets every timeout: a sidecar that can be held open by a
// slow client is a sidecar that can be taken down by one.
func httpServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second, // Tencent keeps callback connections alive
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
