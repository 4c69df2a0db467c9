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
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine"
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
}

func parseServe(args []string, stdout io.Writer, getenv func(string) string) (*serveConfig, error) {
	fs := newFlagSet("serve")
	var (
		c         serveConfig
		token     secretValue
		tokenFile string
		level     string
	)
	fs.StringVar(&c.Listen, "listen", ":8080", "address of the callback listener")
	fs.StringVar(&c.CallbackPath, "callback-path", "/callback", "URL path Tencent IM posts callbacks to")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:9090", "address of the admin listener (health, metrics, rules)")
	fs.IntVar(&c.SdkAppid, "sdkappid", 0, "your app's SDKAppID; callbacks for any other app are refused (required)")
	fs.Var(&token, "callback-token", "callback authentication token; when set, Sign and RequestTime are required")
	fs.StringVar(&tokenFile, "callback-token-file", "", "file holding the callback token")
	fs.DurationVar(&c.CallbackMaxSkew, "callback-max-skew", 60*time.Second, "largest accepted |now - RequestTime|")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a stop waits for in-flight work")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	pos, err := parseArgs(fs, args, getenv)
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
	if c.CallbackToken, err = readSecret("callback-token", &token, tokenFile); err != nil {
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
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("%s must be debug, info, warn or error, got %q", flagRef("log-level"), level)
	}
	return &c, nil
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

	receiver := &engine.Receiver{
		SdkAppid: cfg.SdkAppid,
		Token:    cfg.CallbackToken,
		MaxSkew:  cfg.CallbackMaxSkew,
		Handler:  engine.LogHandler(log),
		Logger:   log,
	}
	admin := engine.NewAdmin()

	mux := http.NewServeMux()
	mux.Handle(cfg.CallbackPath, receiver)

	// Listen before anything reports ready, so a taken port fails the start
	// instead of a health check minutes later.
	cbLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("callback listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		cbLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	cbSrv := newServer(mux, log)
	adminSrv := newServer(admin, log)

	errc := make(chan error, 2)
	go func() { errc <- serveOn(cbSrv, cbLn) }()
	go func() { errc <- serveOn(adminSrv, adminLn) }()
	log.Info("friendflow started", "version", version, "listen", cbLn.Addr().String(),
		"callback_path", cfg.CallbackPath, "admin_listen", adminLn.Addr().String(),
		"sdkappid", cfg.SdkAppid, "sign_check", len(cfg.CallbackToken) > 0)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: signal received")
	case runErr = <-errc:
		log.Error("stopping: a listener failed", "error", runErr)
	}
	admin.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Shutdown closes the listener first, then waits for in-flight callbacks.
	if err := cbSrv.Shutdown(sctx); err != nil {
		log.Warn("callback server did not stop cleanly", "error", err)
	}
	if err := adminSrv.Shutdown(sctx); err != nil {
		log.Warn("admin server did not stop cleanly", "error", err)
	}
	log.Info("friendflow stopped")
	return runErr
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
