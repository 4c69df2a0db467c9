package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

// serveConfig is everything `friendflow serve` is configured with.
type serveConfig struct {
	Listen          string
	CallbackPath    string
	AdminListen     string
	SdkAppid        int
	CallbackToken   []byte
	CallbackMaxSkew time.Duration
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        slog.Level

	Rules          string
	ReloadInterval time.Duration
	Data           string
	NatsURL        string
	NatsReplicas   int
	Sync           string
	Workers        int

	IMEndpoint  string
	IMAdmin     string
	IMSecretKey []byte
	IMRate      float64

	DecisionTimeout  time.Duration
	DecisionFail     string
	DecisionFailCode int

	Pprof bool
}

func parseServe(args []string, stdout io.Writer, getenv func(string) string) (*serveConfig, error) {
	var (
		c         serveConfig
		token     secretValue
		tokenFile string
		imKey     secretValue
		imKeyFile string
		level     string
	)
	fs := serveFlagSet(&c, &token, &tokenFile, &imKey, &imKeyFile, &level)
	pos, cmdline, err := parseArgsFrom(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: friendflow serve [flags]\n\nFlags:\n")
		printDefaults(stdout, fs)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	if c.SdkAppid <= 0 {
		return nil, usagef("%s is required: the SDKAppID of your IM app", flagRef("sdkappid"))
	}
	if c.CallbackToken, err = readSecret("callback-token", &token, tokenFile, cmdline); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.CallbackPath, "/") {
		return nil, usagef("%s must start with /, got %q", flagRef("callback-path"), c.CallbackPath)
	}
	for name, addr := range map[string]string{"listen": c.Listen, "admin-listen": c.AdminListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, usagef("%s: %q is not host:port", flagRef(name), addr)
		}
	}
	if err := positiveDuration("callback-max-skew", c.CallbackMaxSkew); err != nil {
		return nil, err
	}
	if err := positiveDuration("shutdown-timeout", c.ShutdownTimeout); err != nil {
		return nil, err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return nil, usagef("%s must be json or text, got %q", flagRef("log-format"), c.LogFormat)
	}
	if c.IMSecretKey, err = readSecret("im-secret-key", &imKey, imKeyFile, cmdline); err != nil {
		return nil, err
	}
	if c.Rules == "" {
		return nil, usagef("%s must name a directory or file", flagRef("rules"))
	}
	if c.NatsURL == "" && c.Data == "" {
		return nil, usagef("%s must name a directory (or set %s)", flagRef("data"), flagRef("nats-url"))
	}
	if c.NatsReplicas < 1 || c.NatsReplicas > 5 {
		return nil, usagef("%s must be 1 to 5, got %d", flagRef("nats-replicas"), c.NatsReplicas)
	}
	if c.NatsReplicas > 1 && c.NatsURL == "" {
		return nil, usagef("%s above 1 needs a cluster: set %s", flagRef("nats-replicas"), flagRef("nats-url"))
	}
	if c.Sync != "default" && c.Sync != "always" {
		return nil, usagef("%s must be default or always, got %q", flagRef("sync"), c.Sync)
	}
	if c.Workers < 1 {
		return nil, usagef("%s must be at least 1, got %d", flagRef("workers"), c.Workers)
	}
	if _, err := im.ResolveEndpoint(c.IMEndpoint); err != nil {
		return nil, usagef("%s: %v", flagRef("im-endpoint"), err)
	}
	if c.IMAdmin == "" {
		return nil, usagef("%s must not be empty", flagRef("im-admin"))
	}
	if c.IMRate <= 0 {
		return nil, usagef("%s must be positive, got %v", flagRef("im-rate"), c.IMRate)
	}
	if err := positiveDuration("reload-interval", c.ReloadInterval); err != nil {
		return nil, err
	}
	if err := positiveDuration("decision-timeout", c.DecisionTimeout); err != nil {
		return nil, err
	}
	if c.DecisionTimeout >= 2*time.Second {
		return nil, usagef("%s must stay below Tencent's 2s callback timeout, got %s", flagRef("decision-timeout"), c.DecisionTimeout)
	}
	if c.DecisionFail != "open" && c.DecisionFail != "closed" {
		return nil, usagef("%s must be open or closed, got %q", flagRef("decision-fail"), c.DecisionFail)
	}
	if c.DecisionFailCode < 38000 || c.DecisionFailCode > 39000 {
		return nil, usagef("%s must be in 38000-39000, got %d", flagRef("decision-fail-code"), c.DecisionFailCode)
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("%s must be debug, info, warn or error, got %q", flagRef("log-level"), level)
	}
	return &c, nil
}

// serveFlagSet declares serve's flags; the README's configuration table is
// checked against it.
func serveFlagSet(c *serveConfig, token *secretValue, tokenFile *string, imKey *secretValue, imKeyFile *string, level *string) *flag.FlagSet {
	fs := newFlagSet("serve")
	fs.StringVar(&c.Listen, "listen", ":8080", "address of the callback listener")
	fs.StringVar(&c.CallbackPath, "callback-path", "/callback", "URL path Tencent IM posts callbacks to")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9090", "address of the admin listener (health, metrics, rules)")
	fs.IntVar(&c.SdkAppid, "sdkappid", 0, "your app's SDKAppID; callbacks for any other app are refused (required)")
	fs.Var(token, "callback-token", "callback authentication token; when set, Sign and RequestTime are required")
	fs.StringVar(tokenFile, "callback-token-file", "", "file holding the callback token")
	fs.DurationVar(&c.CallbackMaxSkew, "callback-max-skew", 60*time.Second, "largest accepted |now - RequestTime|")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a stop waits for in-flight work")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Rules, "rules", "./rules", "rule files: a directory of *.yaml/*.yml, or one file")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", 5*time.Second, "periodic content check of the rule files (besides fsnotify)")
	fs.StringVar(&c.Data, "data", "./data", "directory of the embedded queue store")
	fs.StringVar(&c.NatsURL, "nats-url", "", "external NATS JetStream cluster URLs, comma-separated; empty: embedded store under --data")
	fs.IntVar(&c.NatsReplicas, "nats-replicas", 1, "replicas of the queue streams and once buckets (with --nats-url)")
	fs.StringVar(&c.Sync, "sync", "default", "queue writes: default (survives kill -9) or always (fsync every write; survives power loss, ~20x slower)")
	fs.IntVar(&c.Workers, "workers", 4, "jobs run at the same time")
	fs.StringVar(&c.IMEndpoint, "im-endpoint", "https://console.tim.qq.com", "IM REST API: a URL or a region (china, singapore, seoul, tokyo, frankfurt, mumbai, usa, jakarta)")
	fs.StringVar(&c.IMAdmin, "im-admin", "administrator", "IM app admin account the REST API is called as")
	fs.Var(imKey, "im-secret-key", "IM secret key (console: app info, key); needed by im.send")
	fs.StringVar(imKeyFile, "im-secret-key-file", "", "file holding the IM secret key")
	fs.Float64Var(&c.IMRate, "im-rate", 100, "requests/s to the IM REST API, all calls together")
	fs.DurationVar(&c.DecisionTimeout, "decision-timeout", 500*time.Millisecond, "deadline of a Prev callback's allow/deny decision")
	fs.StringVar(&c.DecisionFail, "decision-fail", "open", "when a decision times out or a rule fails: open (allow) or closed (deny)")
	fs.IntVar(&c.DecisionFailCode, "decision-fail-code", 38000, "ResultCode of a fail-closed denial (38000-39000)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener")
	return fs
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServe(args, stdout, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	metrics := engine.NewMetrics(version, buildCommit())

	var imc *im.Client
	if len(cfg.IMSecretKey) > 0 {
		imc, err = im.NewClient(im.Config{
			Endpoint: cfg.IMEndpoint, SDKAppID: int64(cfg.SdkAppid), Admin: cfg.IMAdmin,
			SecretKey: string(cfg.IMSecretKey), Rate: cfg.IMRate, Logger: log,
		})
		if err != nil {
			return usagef("IM client: %v", err)
		}
	} else {
		log.Warn("no --im-secret-key: im.send actions will fail permanently (dead letters) until it is set")
	}
	registry := newRegistry(log, imc)

	// Each component is built from those before it and left alone after:
	// the rules and the queue first, then the engine that uses them.
	reloader := &rules.Reloader{
		Path:     cfg.Rules,
		Options:  rules.Options{Registry: registry},
		Logger:   log,
		Interval: cfg.ReloadInterval,
		OnReload: func(set *rules.Set, err error, _ time.Duration) {
			if err != nil {
				metrics.ReloadFailed()
				return
			}
			metrics.RulesLoaded(set)
		},
	}

	q, err := queue.Open(ctx, queue.Config{
		DataDir:    cfg.Data,
		URL:        cfg.NatsURL,
		Replicas:   cfg.NatsReplicas,
		SyncAlways: cfg.Sync == "always",
		Workers:    cfg.Workers,
		Registry:   registry,
		Logger:     log,
		Hooks:      metrics.QueueHooks(),
	})
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	metrics.WatchQueue(q.Stats)

	eng := &engine.Engine{
		Rules:           reloader.Current,
		Queue:           q,
		Logger:          log,
		Metrics:         metrics,
		DecisionTimeout: cfg.DecisionTimeout,
		FailClosed:      cfg.DecisionFail == "closed",
		FailCode:        cfg.DecisionFailCode,
	}

	receiver := &imcallback.Receiver{
		SdkAppid: cfg.SdkAppid,
		Token:    cfg.CallbackToken,
		MaxSkew:  cfg.CallbackMaxSkew,
		Handler:  eng,
		Logger:   log,
		Observe:  metrics.ObserveCallback,
	}
	adm := admin.New()
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
	adm.Handle("GET /metrics", metrics.Handler())
	admin.MountRules(adm, reloader, cfg.SdkAppid)
	admin.MountDLQ(adm, q)
	if cfg.Pprof {
		mountPprof(adm)
	}

	mux := http.NewServeMux()
	mux.Handle(cfg.CallbackPath, receiver)

	// Listen before anything reports ready, so a taken port fails the start
	// instead of a health check minutes later.
	cbLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = q.Stop(cfg.ShutdownTimeout)
		return fmt.Errorf("callback listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		cbLn.Close()
		_ = q.Stop(cfg.ShutdownTimeout)
		return fmt.Errorf("admin listener: %w", err)
	}
	cbSrv := newServer(mux, log)
	adminSrv := newServer(adm, log)

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	errc := make(chan error, 3)
	go func() { errc <- serveOn(cbSrv, cbLn) }()
	go func() { errc <- serveOn(adminSrv, adminLn) }()
	workersDone := make(chan struct{})
	go func() {
		defer close(workersDone)
		if err := q.Run(bg); err != nil {
			errc <- fmt.Errorf("workers: %w", err)
		}
	}()
	go func() {
		// The first load runs once the listeners are open: however long
		// the files take to load (or to be refused), /healthz, /readyz
		// and /rules answer. A start with broken rules does not exit: the
		// process stays up, not ready, and loads the rules as soon as they
		// are fixed; the error is in the log, /rules and /readyz.
		if err := reloader.Reload("start"); err != nil {
			log.Error("rules did not load at start; not ready until they do", "path", cfg.Rules)
		}
		if err := reloader.Watch(bg); err != nil {
			log.Error("rule watcher stopped; reload with SIGHUP or POST /reload", "error", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = reloader.Reload("signal: SIGHUP")
			case <-bg.Done():
				return
			}
		}
	}()
	log.Info("friendflow started", "version", version, "listen", cbLn.Addr().String(),
		"callback_path", cfg.CallbackPath, "admin_listen", adminLn.Addr().String(),
		"sdkappid", cfg.SdkAppid, "sign_check", len(cfg.CallbackToken) > 0,
		"rules", cfg.Rules, "queue", queueDesc(cfg), "workers", cfg.Workers)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: signal received")
	case runErr = <-errc:
		log.Error("stopping: a component failed", "error", runErr)
	}
	adm.SetDraining()
	stopStart := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener first, then waits for in-flight
	// callbacks, whose jobs are stored before they are answered.
	if err := cbSrv.Shutdown(sctx); err != nil {
		log.Warn("callback server did not stop cleanly", "error", err)
	}
	// Running jobs finish within what is left of the timeout, or go back
	// to the queue for the next start; then the store closes.
	left := max(cfg.ShutdownTimeout-time.Since(stopStart), time.Second)
	if err := q.Stop(left); err != nil {
		log.Warn("queue did not stop cleanly", "error", err)
	}
	stopBG()
	<-workersDone
	if err := adminSrv.Shutdown(sctx); err != nil {
		log.Warn("admin server did not stop cleanly", "error", err)
	}
	log.Info("friendflow stopped", "took", time.Since(stopStart).String())
	return runErr
}

func queueDesc(cfg *serveConfig) string {
	if cfg.NatsURL != "" {
		return fmt.Sprintf("external (replicas %d)", cfg.NatsReplicas)
	}
	return "embedded in " + cfg.Data + " (sync " + cfg.Sync + ")"
}

func serveOn(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer sets every timeout: a sidecar that can be held open by a slow
// client is a sidecar that can be taken down by one.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
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
