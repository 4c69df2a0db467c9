package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/internal/tracing"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"
)

// Rejected callbacks are logged at most this often (per second), in bursts
// of rejectLogBurst; the rest are counted in
// friendflow_log_lines_suppressed_total.
const (
	rejectLogRate  = 10
	rejectLogBurst = 20
)

// minDLQBytes is the smallest --dlq-max-bytes.
const minDLQBytes byteSize = 16 << 20

// serveConfig is everything `friendflow serve` is configured with.
type serveConfig struct {
	Listen          string
	CallbackPath    string
	AdminListen     string
	SdkAppid        int
	CallbackToken   []byte
	CallbackMaxSkew time.Duration
	MaxConnections  int
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        slog.Level

	Rules          string
	ReloadInterval time.Duration
	Data           string
	NatsURL        string
	NatsReplicas   int
	NatsNamespace  string
	NatsAuth       queue.Auth // the password read from NatsPassFile
	NatsPassFile   string
	NatsTLS        queue.TLS
	DLQMaxAge      time.Duration
	DLQMaxBytes    byteSize
	Sync           string
	Workers        int

	IMEndpoint        string
	IMAdmin           string
	IMSecretKey       []byte
	IMRate            float64
	IMRateAPI         rateAPI // overrides IMRate for the APIs it names
	IMBatchRecipients int

	DecisionTimeout  time.Duration
	DecisionFail     string
	DecisionFailCode int

	Pprof bool

	RecordEvents int

	// The admin API's guard (adminguard.go).
	AdminToken    []byte
	AdminInsecure bool
	AdminHosts    stringList
}

// serveFlags are serve's flags as given, before config checks them.
type serveFlags struct {
	c              serveConfig
	token          secretValue
	tokenFile      string
	imKey          secretValue
	imKeyFile      string
	adminToken     secretValue
	adminTokenFile string
	level          string
}

// serveCommand runs the service.
func serveCommand(fs *flag.FlagSet) runFunc {
	f := new(serveFlags)
	f.declare(fs)
	return func(ctx context.Context, inv *invocation) error {
		cfg, err := f.config(inv.args, inv.cmdline)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, inv.stdout, inv.stderr, inv.getenv)
	}
}

// config checks the parsed flags and returns the configuration.
func (f *serveFlags) config(pos []string, cmdline map[string]bool) (*serveConfig, error) {
	c := f.c
	var err error
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	if c.SdkAppid <= 0 {
		return nil, usagef("%s is required: the SDKAppID of your IM app", flagRef("sdkappid"))
	}
	if c.CallbackToken, err = readSecret("callback-token", &f.token, f.tokenFile, cmdline); err != nil {
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
	if c.MaxConnections < 1 {
		return nil, usagef("%s must be at least 1, got %d", flagRef("max-connections"), c.MaxConnections)
	}
	if err := positiveDuration("shutdown-timeout", c.ShutdownTimeout); err != nil {
		return nil, err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return nil, usagef("%s must be json or text, got %q", flagRef("log-format"), c.LogFormat)
	}
	if c.IMSecretKey, err = readSecret("im-secret-key", &f.imKey, f.imKeyFile, cmdline); err != nil {
		return nil, err
	}
	if c.AdminToken, err = readSecret("admin-token", &f.adminToken, f.adminTokenFile, cmdline); err != nil {
		return nil, err
	}
	if err := c.checkAdminGuard(); err != nil {
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
	if err := checkNATS(&c, cmdline); err != nil {
		return nil, err
	}
	if err := positiveDuration("dlq-max-age", c.DLQMaxAge); err != nil {
		return nil, err
	}
	if c.DLQMaxBytes < minDLQBytes {
		// One dead letter can be as large as a job message (8 MiB
		// embedded): a smaller limit could refuse it for good.
		return nil, usagef("%s must be at least %s, got %s", flagRef("dlq-max-bytes"), minDLQBytes, c.DLQMaxBytes)
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
	if c.IMBatchRecipients <= im.MaxBatchRecipients {
		return nil, usagef("%s must be more than %d (one request's recipients), got %d", flagRef("im-batch-recipients"), im.MaxBatchRecipients, c.IMBatchRecipients)
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
	if c.RecordEvents < 0 {
		return nil, usagef("%s must be 0 (off) or more, got %d", flagRef("record-events"), c.RecordEvents)
	}
	if err := c.LogLevel.UnmarshalText([]byte(f.level)); err != nil {
		return nil, usagef("%s must be debug, info, warn or error, got %q", flagRef("log-level"), f.level)
	}
	return &c, nil
}

// declare declares serve's flags on fs; docs/operations.md's configuration
// table is checked against them.
func (f *serveFlags) declare(fs *flag.FlagSet) {
	c := &f.c
	fs.StringVar(&c.Listen, "listen", ":8080", "address of the callback listener")
	fs.StringVar(&c.CallbackPath, "callback-path", "/callback", "URL path Tencent IM posts callbacks to")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9090", "address of the admin listener (health, metrics, rules)")
	fs.IntVar(&c.SdkAppid, "sdkappid", 0, "your app's SDKAppID; callbacks for any other app are refused (required)")
	fs.Var(&f.token, "callback-token", "callback authentication token; when set, Sign and RequestTime are required")
	fs.StringVar(&f.tokenFile, "callback-token-file", "", "file holding the callback token")
	fs.DurationVar(&c.CallbackMaxSkew, "callback-max-skew", 60*time.Second, "largest accepted |now - RequestTime|")
	fs.IntVar(&c.MaxConnections, "max-connections", 1024, "open connections the callback listener serves at once; more wait to be accepted")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a stop waits for in-flight work")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Rules, "rules", "./rules", "rule files: a directory of *.yaml/*.yml, or one file")
	fs.DurationVar(&c.ReloadInterval, "reload-interval", 5*time.Second, "periodic content check of the rule files (besides fsnotify)")
	fs.StringVar(&c.Data, "data", "./data", "directory of the embedded queue store")
	fs.StringVar(&c.NatsURL, "nats-url", "", "external NATS JetStream cluster URLs, comma-separated; empty: embedded store under --data")
	fs.IntVar(&c.NatsReplicas, "nats-replicas", 1, "replicas of the queue streams and once buckets (with --nats-url)")
	fs.StringVar(&c.NatsNamespace, "nats-namespace", queue.DefaultNamespace, "prefix of every JetStream stream, consumer, subject and bucket; one per app sharing a NATS account")
	fs.StringVar(&c.NatsAuth.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
	fs.StringVar(&c.NatsAuth.NKeyFile, "nats-nkey", "", "file holding a NATS user NKey seed")
	fs.StringVar(&c.NatsAuth.User, "nats-user", "", "NATS user (password from --nats-password-file)")
	fs.StringVar(&c.NatsPassFile, "nats-password-file", "", "file holding the password of --nats-user")
	fs.StringVar(&c.NatsTLS.CAFile, "nats-tls-ca", "", "CA certificates (PEM) that verify the NATS servers; empty: the system's")
	fs.StringVar(&c.NatsTLS.CertFile, "nats-tls-cert", "", "client certificate (PEM) for NATS servers that verify clients")
	fs.StringVar(&c.NatsTLS.KeyFile, "nats-tls-key", "", "key (PEM) of --nats-tls-cert")
	c.DLQMaxBytes = queue.DefaultDeadMaxBytes
	fs.DurationVar(&c.DLQMaxAge, "dlq-max-age", queue.DefaultDeadMaxAge, "dead letters older than this are discarded")
	fs.Var(&c.DLQMaxBytes, "dlq-max-bytes", "the oldest dead letters are discarded beyond this size (e.g. 256MiB, 1GiB)")
	fs.StringVar(&c.Sync, "sync", "default", "queue writes: default (survives kill -9) or always (fsync every write; survives power loss, ~20x slower)")
	fs.IntVar(&c.Workers, "workers", 4, "jobs run at the same time")
	fs.StringVar(&c.IMEndpoint, "im-endpoint", "https://console.tim.qq.com", "IM REST API: a URL or a region (china, singapore, seoul, tokyo, frankfurt, mumbai, usa, jakarta)")
	fs.StringVar(&c.IMAdmin, "im-admin", "administrator", "IM app admin account the REST API is called as")
	fs.Var(&f.imKey, "im-secret-key", "IM secret key (console: app info, key); needed by im.send")
	fs.StringVar(&f.imKeyFile, "im-secret-key-file", "", "file holding the IM secret key")
	fs.Float64Var(&c.IMRate, "im-rate", im.DefaultRate, "requests/s to each IM REST API (Tencent counts each API on its own)")
	fs.Var(&c.IMRateAPI, "im-rate-api", "requests/s of single IM REST APIs, overriding --im-rate: api=N pairs, comma-separated (openim/batchsendmsg=50,sns/friend_update=20)")
	fs.IntVar(&c.IMBatchRecipients, "im-batch-recipients", im.DefaultBatchRecipients, "recipients per minute of openim/batchsendmsg (Tencent's own limit besides the requests/s)")
	fs.DurationVar(&c.DecisionTimeout, "decision-timeout", 500*time.Millisecond, "deadline of a Prev callback's allow/deny decision")
	fs.StringVar(&c.DecisionFail, "decision-fail", "open", "when a decision times out or a rule fails: open (allow) or closed (deny)")
	fs.IntVar(&c.DecisionFailCode, "decision-fail-code", 38000, "ResultCode of a fail-closed denial (38000-39000)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener")
	fs.IntVar(&c.RecordEvents, "record-events", record.DefaultSize, "recent events kept in memory for /events, backtests and the console; 0: off")
	f.declareAdminGuard(fs)
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func serve(ctx context.Context, cfg *serveConfig, stdout, stderr io.Writer, getenv func(string) string) error {
	if err := rulesPresent(cfg.Rules); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if cfg.AdminInsecure && len(cfg.AdminToken) == 0 && !loopbackAddr(cfg.AdminListen) {
		log.Warn("the admin API is open to anyone who reaches "+cfg.AdminListen+" (--admin-insecure): rules, reload, explain and dead letters", "admin_listen", cfg.AdminListen)
	}
	metrics := engine.NewMetrics(version, buildCommit())
	tracer, err := tracing.FromEnv(ctx, getenv, version, stdout, log)
	if err != nil {
		return usagef("%v", err)
	}
	defer shutdownTracer(tracer, log)

	var imc *im.Client
	if len(cfg.IMSecretKey) > 0 {
		imc, err = im.NewClient(im.Config{
			Endpoint: cfg.IMEndpoint, SDKAppID: int64(cfg.SdkAppid), Admin: cfg.IMAdmin,
			SecretKey: string(cfg.IMSecretKey), Rate: cfg.IMRate, APIRates: cfg.IMRateAPI,
			BatchRecipients: cfg.IMBatchRecipients, Logger: log, Observe: metrics.ObserveIM,
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
	reloader := &reload.Reloader{
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

	ring := record.New(cfg.RecordEvents)
	q, err := queue.Open(ctx, queue.Config{
		DataDir:      cfg.Data,
		URL:          cfg.NatsURL,
		Auth:         cfg.NatsAuth,
		TLS:          cfg.NatsTLS,
		Namespace:    cfg.NatsNamespace,
		SdkAppid:     int64(cfg.SdkAppid),
		DeadMaxAge:   cfg.DLQMaxAge,
		DeadMaxBytes: int64(cfg.DLQMaxBytes),
		Replicas:     cfg.NatsReplicas,
		SyncAlways:   cfg.Sync == "always",
		Workers:      cfg.Workers,
		Registry:     registry,
		Logger:       log,
		Hooks:        ring.Hooks(metrics.QueueHooks()),
		Tracer:       tracer,
	})
	if owner := (*queue.OwnerError)(nil); errors.As(err, &owner) {
		return usagef("%s is %d, but NATS namespace %q (stream %s) belongs to SdkAppid %s: give this app its own %s",
			flagRef("sdkappid"), owner.SdkAppid, owner.Namespace, owner.Stream, owner.Owner, flagRef("nats-namespace"))
	}
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	metrics.WatchQueue(q.Stats)
	metrics.WatchStore(q.StoreError)

	limit, advice := q.CallbackLimit()
	eng := &engine.Engine{
		Budget:          engine.NewJobBudget(limit, advice, registry),
		Rules:           reloader.Current,
		Queue:           q,
		Logger:          log,
		Metrics:         metrics,
		Tracer:          tracer,
		Recorder:        recorder(ring),
		DecisionTimeout: cfg.DecisionTimeout,
		FailClosed:      cfg.DecisionFail == "closed",
		FailCode:        cfg.DecisionFailCode,
	}

	receiver := &imcallback.Receiver{
		SdkAppid:   cfg.SdkAppid,
		Token:      cfg.CallbackToken,
		MaxSkew:    cfg.CallbackMaxSkew,
		Handler:    eng,
		Logger:     log,
		Observe:    metrics.ObserveCallback,
		RejectLogs: rate.NewLimiter(rejectLogRate, rejectLogBurst),
		Suppressed: metrics.LogsSuppressed.WithLabelValues("callback_rejected").Inc,
	}
	if len(cfg.CallbackToken) == 0 {
		receiver.Unsigned = metrics.Unsigned.Inc
		log.Warn("no --callback-token: callbacks are not authenticated, anyone who reaches the callback listener can inject events; set the token of Tencent's callback authentication (counted in friendflow_callbacks_unsigned_total)",
			"listen", cfg.Listen)
	}
	adm := admin.New()
	adm.SetGuard(admin.Guard{Token: cfg.AdminToken, Hosts: cfg.AdminHosts})
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
	admin.MountEvents(adm, ring, reloader, registry)
	console := &admin.Console{Version: version, Rules: reloader, Ring: ring, DLQ: q, Registry: registry,
		Metrics: metrics.Registry, Queue: q.Stats, Logger: log, CheckToken: admin.TokenChecker(cfg.AdminToken)}
	if imc != nil {
		console.IMRate = imc.RateStates
	}
	if err := console.Mount(adm); err != nil {
		_ = q.Stop(cfg.ShutdownTimeout)
		return fmt.Errorf("console: %w", err)
	}
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
	// Beyond the limit, connections wait in the kernel's accept queue and
	// hold no descriptor of ours: a flood cannot take the file descriptors
	// the store and the admin listener need.
	cbLn = netutil.LimitListener(cbLn, cfg.MaxConnections)
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
			log.Error("rule watcher stopped; reload with SIGHUP or POST /reload", "err", err)
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
		"sdkappid", cfg.SdkAppid, "sign_check", len(cfg.CallbackToken) > 0, "admin_token", len(cfg.AdminToken) > 0,
		"rules", cfg.Rules, "queue", queueDesc(cfg), "workers", cfg.Workers)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: signal received")
	case runErr = <-errc:
		log.Error("stopping: a component failed", "err", runErr)
	}
	adm.SetDraining()
	stopStart := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener first, then waits for in-flight
	// callbacks, whose jobs are stored before they are answered.
	if err := cbSrv.Shutdown(sctx); err != nil {
		log.Warn("callback server did not stop cleanly", "err", err)
	}
	// Running jobs finish within what is left of the timeout, or go back
	// to the queue for the next start; then the store closes.
	left := max(cfg.ShutdownTimeout-time.Since(stopStart), time.Second)
	if err := q.Stop(left); err != nil {
		log.Warn("queue did not stop cleanly", "err", err)
	}
	stopBG()
	<-workersDone
	if err := adminSrv.Shutdown(sctx); err != nil {
		log.Warn("admin server did not stop cleanly", "err", err)
	}
	log.Info("friendflow stopped", "took", time.Since(stopStart).String())
	return runErr
}

// shutdownTracer exports the spans still buffered before the process ends.
func shutdownTracer(t *tracing.Tracer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans not exported at stop", "err", err)
	}
}

// recorder is ring as an engine.Recorder: nil, not a nil *record.Ring,
// when recording is off, so that the engine skips the call.
func recorder(ring *record.Ring) engine.Recorder {
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

// checkNATS checks the NATS namespace, credentials and TLS settings, and
// reads the password file.
func checkNATS(c *serveConfig, cmdline map[string]bool) error {
	if err := queue.CheckNamespace(c.NatsNamespace); err != nil {
		return usagef("%s: %v", flagRef("nats-namespace"), err)
	}
	var set []string // the external-cluster flags given
	for _, f := range []struct{ name, path string }{
		{"nats-creds", c.NatsAuth.CredsFile}, {"nats-nkey", c.NatsAuth.NKeyFile}, {"nats-password-file", c.NatsPassFile},
		{"nats-tls-ca", c.NatsTLS.CAFile}, {"nats-tls-cert", c.NatsTLS.CertFile}, {"nats-tls-key", c.NatsTLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return usagef("%s: %v", flagRef(f.name), err)
		}
		set = append(set, f.name)
	}
	if c.NatsAuth.User != "" {
		set = append(set, "nats-user")
	}
	if len(set) > 0 && c.NatsURL == "" {
		return usagef("%s applies to an external cluster: set %s", flagRef(set[0]), flagRef("nats-url"))
	}
	if c.NatsPassFile != "" {
		pass, err := readSecret("nats-password", &secretValue{}, c.NatsPassFile, cmdline)
		if err != nil {
			return err
		}
		c.NatsAuth.Password = string(pass)
	}
	return checkNATSAuth(c.NatsAuth, c.NatsTLS)
}

// checkNATSAuth names the flags of settings that cannot work together.
func checkNATSAuth(a queue.Auth, t queue.TLS) error {
	methods := 0
	for _, on := range []bool{a.CredsFile != "", a.NKeyFile != "", a.User != "" || a.Password != ""} {
		if on {
			methods++
		}
	}
	switch {
	case methods > 1:
		return usagef("use one of %s, %s, or %s with %s", flagRef("nats-creds"), flagRef("nats-nkey"), flagRef("nats-user"), flagRef("nats-password-file"))
	case a.User != "" && a.Password == "":
		return usagef("%s needs %s", flagRef("nats-user"), flagRef("nats-password-file"))
	case a.User == "" && a.Password != "":
		return usagef("%s needs %s", flagRef("nats-password-file"), flagRef("nats-user"))
	case (t.CertFile == "") != (t.KeyFile == ""):
		return usagef("%s and %s go together", flagRef("nats-tls-cert"), flagRef("nats-tls-key"))
	}
	return nil
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

// rateAPI is --im-rate-api: api=N pairs, comma-separated, each api one
// that friendflow calls (im.APIs), each N a positive number of requests/s.
type rateAPI map[string]float64

func (r rateAPI) String() string {
	pairs := make([]string, 0, len(r))
	for _, api := range im.APIs {
		if n, ok := r[api]; ok {
			pairs = append(pairs, api+"="+strconv.FormatFloat(n, 'g', -1, 64))
		}
	}
	return strings.Join(pairs, ",")
}

func (r *rateAPI) Set(v string) error {
	out := rateAPI{}
	for _, pair := range strings.Split(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		api, n, ok := strings.Cut(strings.TrimSpace(pair), "=")
		api = im.CanonicalAPI(api)
		if !ok || !slices.Contains(im.APIs, api) {
			return fmt.Errorf("%q is not api=N with api one of %s", pair, strings.Join(im.APIs, ", "))
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%s=%s: want a positive number of requests/s", api, n)
		}
		if _, dup := out[api]; dup {
			return fmt.Errorf("%s is named twice", api)
		}
		out[api] = f
	}
	*r = out
	return nil
}
