package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startEmbedded runs a JetStream server inside the process, storing under
// cfg.DataDir. Without cfg.Listen it opens no port at all: the client
// connects in-process.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "friendflow-embedded",
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		SyncAlways: cfg.SyncAlways,
		DontListen: cfg.Listen == "",
		NoSigs:     true, // signals belong to the process, not to the server
		NoLog:      true, // logging goes through slogAdapter below
		// A callback may carry 1000 pairs, each with a few jobs that embed
		// the event: well over the 1 MB default for one callback's message.
		MaxPayload: embeddedMaxPayload,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("queue: listen address %q: %w", cfg.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("queue: listen port %q: %w", port, err)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue: embedded server: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{log.With("component", "nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("queue: embedded server not ready after 30s")
	}
	return ns, nil
}

// slogAdapter routes the embedded server's log to slog. Notices (start-up
// banner, stream recovery) go to debug; warnings and errors keep their level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  {}
func (a slogAdapter) Tracef(format string, v ...any)  {}

// retryable tells whether an operation that failed with err may succeed if
// repeated: timeouts, no responders and server-side 5xx (no leader, no
// quorum) are; a closed connection, an oversized message, another app's
// namespace or a 4xx are not, except the two a cluster still electing
// leaders answers while streams are being created: "stream not found" for
// a stream that was just created (or is being recovered), and "name
// already in use" for one another replica created meanwhile.
func retryable(err error) bool {
	var owner *OwnerError
	switch {
	case errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, context.Canceled),
		errors.As(err, &owner):
		return false
	case errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		return true
	}
	if outOfResources(err) {
		return false // the store is full: failing fast is what the caller can use
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code >= 500 || apiErr.Code == 408
	}
	return true
}

// outOfResources tells whether err is JetStream refusing a write for want
// of storage or memory ("insufficient resources", error codes 10023, 10047,
// 10028 in https://github.com/nats-io/nats-server/blob/main/server/errors.json).
func outOfResources(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10023, 10047, 10028:
		return true
	}
	return false
}

// retrying runs op, with each attempt bounded by attemptTimeout, until it
// succeeds, fails for good, or ctx is done. Backoff starts at 50 ms and
// doubles up to 1 s.
func retrying(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		log.Debug("retrying", "op", what, "err", err, "in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
