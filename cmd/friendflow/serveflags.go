package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
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
	MaxPairs        int
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
	ProfileCacheTTL   time.Duration
	ProfileCacheSize  int

	DecisionTimeout  time.Duration
	DecisionFail     string
	DecisionFailCode int

	Pprof bool

	RecordEvents int
	RecordMaxAge time.Duration

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

// config checks the parsed flags, one concern at a time, and returns the
// configuration. The first mistake found is the one reported.
func (f *serveFlags) config(pos []string, cmdline map[string]bool) (*serveConfig, error) {
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q", pos[0])
	}
	c := f.c
	if err := f.checkCallback(&c, cmdline); err != nil {
		return nil, err
	}
	if err := checkListeners(&c); err != nil {
		return nil, err
	}
	if err := f.checkLogging(&c); err != nil {
		return nil, err
	}
	if err := f.checkAdmin(&c, cmdline); err != nil {
		return nil, err
	}
	if err := checkRules(&c); err != nil {
		return nil, err
	}
	if err := checkQueue(&c, cmdline); err != nil {
		return nil, err
	}
	if err := f.checkIM(&c, cmdline); err != nil {
		return nil, err
	}
	if err := checkDecision(&c); err != nil {
		return nil, err
	}
	if c.RecordEvents < 0 {
		return nil, usagef("%s must be 0 (off) or more, got %d", flagRef("record-events"), c.RecordEvents)
	}
	if err := positiveDuration("record-max-age", c.RecordMaxAge); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkCallback checks what a callback is verified with: the app, the
// token, the path, the pair bound and the clock skew.
func (f *serveFlags) checkCallback(c *serveConfig, cmdline map[string]bool) error {
	if c.SdkAppid <= 0 {
		return usagef("%s is required: the SDKAppID of your IM app", flagRef("sdkappid"))
	}
	var err error
	if c.CallbackToken, err = readSecret("callback-token", &f.token, f.tokenFile, cmdline); err != nil {
		return err
	}
	if !strings.HasPrefix(c.CallbackPath, "/") {
		return usagef("%s must start with /, got %q", flagRef("callback-path"), c.CallbackPath)
	}
	if c.MaxPairs < 1 {
		return usagef("%s must be at least 1, got %d", flagRef("max-pairs"), c.MaxPairs)
	}
	return positiveDuration("callback-max-skew", c.CallbackMaxSkew)
}

// checkListeners checks the two listeners' addresses, the callback
// listener's connection limit and how long a stop waits for them.
func checkListeners(c *serveConfig) error {
	for _, l := range []struct{ name, addr string }{{"listen", c.Listen}, {"admin-listen", c.AdminListen}} {
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return usagef("%s: %q is not host:port", flagRef(l.name), l.addr)
		}
	}
	if c.MaxConnections < 1 {
		return usagef("%s must be at least 1, got %d", flagRef("max-connections"), c.MaxConnections)
	}
	return positiveDuration("shutdown-timeout", c.ShutdownTimeout)
}

// checkLogging checks the log format and level.
func (f *serveFlags) checkLogging(c *serveConfig) error {
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return usagef("%s must be json or text, got %q", flagRef("log-format"), c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(f.level)); err != nil {
		return usagef("%s must be debug, info, warn or error, got %q", flagRef("log-level"), f.level)
	}
	return nil
}

// checkAdmin reads the admin token and checks the admin API's guard
// (adminguard.go).
func (f *serveFlags) checkAdmin(c *serveConfig, cmdline map[string]bool) error {
	var err error
	if c.AdminToken, err = readSecret("admin-token", &f.adminToken, f.adminTokenFile, cmdline); err != nil {
		return err
	}
	return c.checkAdminGuard()
}

// checkRules checks where the rule files are and how often they are
// checked for changes.
func checkRules(c *serveConfig) error {
	if c.Rules == "" {
		return usagef("%s must name a directory or file", flagRef("rules"))
	}
	return positiveDuration("reload-interval", c.ReloadInterval)
}

// checkQueue checks the queue: where it is stored (embedded or a NATS
// cluster), its dead letters' limits, how it writes and how many jobs run
// at once.
func checkQueue(c *serveConfig, cmdline map[string]bool) error {
	if c.NatsURL == "" && c.Data == "" {
		return usagef("%s must name a directory (or set %s)", flagRef("data"), flagRef("nats-url"))
	}
	if c.NatsReplicas < 1 || c.NatsReplicas > 5 {
		return usagef("%s must be 1 to 5, got %d", flagRef("nats-replicas"), c.NatsReplicas)
	}
	if c.NatsReplicas > 1 && c.NatsURL == "" {
		return usagef("%s above 1 needs a cluster: set %s", flagRef("nats-replicas"), flagRef("nats-url"))
	}
	if err := checkNATS(c, cmdline); err != nil {
		return err
	}
	if err := positiveDuration("dlq-max-age", c.DLQMaxAge); err != nil {
		return err
	}
	if c.DLQMaxBytes < minDLQBytes {
		// One dead letter can be as large as a job message (8 MiB
		// embedded): a smaller limit could refuse it for good.
		return usagef("%s must be at least %s, got %s", flagRef("dlq-max-bytes"), minDLQBytes, c.DLQMaxBytes)
	}
	if c.Sync != "default" && c.Sync != "always" {
		return usagef("%s must be default or always, got %q", flagRef("sync"), c.Sync)
	}
	if c.Workers < 1 {
		return usagef("%s must be at least 1, got %d", flagRef("workers"), c.Workers)
	}
	return nil
}

// checkIM reads the IM secret key and checks the IM REST API's endpoint,
// admin account and rate limits.
func (f *serveFlags) checkIM(c *serveConfig, cmdline map[string]bool) error {
	var err error
	if c.IMSecretKey, err = readSecret("im-secret-key", &f.imKey, f.imKeyFile, cmdline); err != nil {
		return err
	}
	if _, err := im.ResolveEndpoint(c.IMEndpoint); err != nil {
		return usagef("%s: %v", flagRef("im-endpoint"), err)
	}
	if c.IMAdmin == "" {
		return usagef("%s must not be empty", flagRef("im-admin"))
	}
	if c.IMRate <= 0 {
		return usagef("%s must be positive, got %v", flagRef("im-rate"), c.IMRate)
	}
	if err := positiveDuration("profile-cache-ttl", c.ProfileCacheTTL); err != nil {
		return err
	}
	if c.ProfileCacheSize < 1 {
		return usagef("%s must be at least 1, got %d", flagRef("profile-cache-size"), c.ProfileCacheSize)
	}
	if c.IMBatchRecipients <= im.MaxBatchRecipients {
		return usagef("%s must be more than %d (one request's recipients), got %d", flagRef("im-batch-recipients"), im.MaxBatchRecipients, c.IMBatchRecipients)
	}
	return nil
}

// checkDecision checks how a Prev callback's allow/deny decision is made
// when it runs late or fails.
func checkDecision(c *serveConfig) error {
	if err := positiveDuration("decision-timeout", c.DecisionTimeout); err != nil {
		return err
	}
	if c.DecisionTimeout >= 2*time.Second {
		return usagef("%s must stay below Tencent's 2s callback timeout, got %s", flagRef("decision-timeout"), c.DecisionTimeout)
	}
	if c.DecisionFail != "open" && c.DecisionFail != "closed" {
		return usagef("%s must be open or closed, got %q", flagRef("decision-fail"), c.DecisionFail)
	}
	if c.DecisionFailCode < 38000 || c.DecisionFailCode > 39000 {
		return usagef("%s must be in 38000-39000, got %d", flagRef("decision-fail-code"), c.DecisionFailCode)
	}
	return nil
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
	fs.IntVar(&c.MaxPairs, "max-pairs", imcallback.DefaultMaxPairs, "most pairs one callback may carry; a callback over it is refused whole, before anything is stored")
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
	fs.DurationVar(&c.ProfileCacheTTL, "profile-cache-ttl", im.DefaultProfileTTL, "how long an IM profile read for profile() is kept")
	fs.IntVar(&c.ProfileCacheSize, "profile-cache-size", im.DefaultProfileCacheSize, "IM profiles kept at most for profile() (least recently used first out)")
	fs.DurationVar(&c.DecisionTimeout, "decision-timeout", 500*time.Millisecond, "deadline of a Prev callback's allow/deny decision")
	fs.StringVar(&c.DecisionFail, "decision-fail", "open", "when a decision times out or a rule fails: open (allow) or closed (deny)")
	fs.IntVar(&c.DecisionFailCode, "decision-fail-code", 38000, "ResultCode of a fail-closed denial (38000-39000)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener")
	fs.IntVar(&c.RecordEvents, "record-events", record.DefaultSize, "recent events of the whole deployment kept in JetStream for /events, backtests and the console; 0: off")
	fs.DurationVar(&c.RecordMaxAge, "record-max-age", record.DefaultMaxAge, "recorded events older than this are discarded")
	f.declareAdminGuard(fs)
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
