package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Auth is how the queue authenticates to an external NATS cluster: at most
// one of a credentials file (user JWT and NKey seed, as `nsc` writes it), an
// NKey seed file, or a user and password. Credentials inside Config.URL
// (nats://user:pass@host) work too, and are never logged.
// https://docs.nats.io/using-nats/developer/connecting/creds
type Auth struct {
	CredsFile string
	NKeyFile  string // a file holding a user NKey seed (SU…)
	User      string
	Password  string
}

// TLS secures the connection to an external NATS cluster. CAFile verifies
// the servers (empty: the system's roots); CertFile and KeyFile, together,
// are the client certificate of servers that verify clients. The
// connection uses TLS when any is set, or when the URL is tls://, or when
// the server requires it.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// check reports settings that cannot work together.
func (a Auth) check() error {
	n := 0
	for _, set := range []bool{a.CredsFile != "", a.NKeyFile != "", a.User != "" || a.Password != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("NATS authentication: use one of a credentials file, an NKey seed file, or a user and password")
	case (a.User == "") != (a.Password == ""):
		return errors.New("NATS authentication: a user needs a password and a password a user")
	}
	return nil
}

func (t TLS) check() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("NATS TLS: a client certificate needs its key and a key its certificate")
	}
	return nil
}

// connect connects to the external cluster of cfg.URL.
func connect(cfg Config, log *slog.Logger) (*nats.Conn, error) {
	if err := cfg.Auth.check(); err != nil {
		return nil, err
	}
	if err := cfg.TLS.check(); err != nil {
		return nil, err
	}
	opts := []nats.Option{
		nats.Name("friendflow"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted())
		}),
	}
	a := cfg.Auth
	switch {
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS NKey seed file: %w", err)
		}
		opts = append(opts, o)
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RedactURLs(cfg.URL), err)
	}
	log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted())
	return nc, nil
}

// RedactURLs returns a comma-separated list of NATS URLs with every
// password replaced (url.URL.Redacted), for logs and messages. A token
// (nats://token@host) is replaced too. Entries that do not parse are
// replaced whole: they may hold a password all the same.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // what the client assumes
		}
		u, err := url.Parse(p)
		if err != nil {
			parts[i] = "<unparsable URL>"
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); !has {
				u.User = url.User("xxxxx") // a token
			}
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
