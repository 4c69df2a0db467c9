package main

import (
	"errors"
	"flag"
	"io/fs"
	"net"
	"os"
	"strings"
)

// declareAdminGuard declares serve's flags that protect the admin API.
func (f *serveFlags) declareAdminGuard(fs *flag.FlagSet) {
	c := &f.c
	fs.Var(&f.adminToken, "admin-token", "admin API token: every endpoint but /healthz, /readyz and /metrics then needs Authorization: Bearer TOKEN")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin API token")
	fs.BoolVar(&c.AdminInsecure, "admin-insecure", false, "allow a non-loopback --admin-listen without a token (anyone who reaches it can reload and drop dead letters)")
	fs.Var(&c.AdminHosts, "admin-host", "names, comma-separated, a request's Host may carry besides loopback and the listener's IP (a Service in front of the admin port)")
}

// minAdminToken is the shortest admin token serve accepts, in bytes: 128
// bits if random, and no word typed as a token ("admin", "secret") opens
// an API that may listen on every interface.
const minAdminToken = 16

// checkAdminGuard refuses an admin API that anyone on the network could
// write to, unless asked for explicitly, and a token too short to guard it.
func (c *serveConfig) checkAdminGuard() error {
	if n := len(c.AdminToken); n > 0 && n < minAdminToken {
		// The length only, never the token: it is a secret even when weak.
		return usagef("%s: the admin token is %d bytes; use at least %d random bytes (head -c 32 /dev/urandom | base64)",
			flagRef("admin-token"), n, minAdminToken)
	}
	if len(c.AdminToken) == 0 && !c.AdminInsecure && !loopbackAddr(c.AdminListen) {
		return usagef("%s %s is not a loopback address: set %s so the admin API needs a token, or %s to serve it to anyone who reaches it",
			flagRef("admin-listen"), c.AdminListen, flagRef("admin-token-file"), flagRef("admin-insecure"))
	}
	return nil
}

// loopbackAddr says whether a host:port listens on loopback only; an empty
// host (":9090") listens on every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// rulesPresent refuses to start without rule files to watch: the image
// ships none, and a forgotten mount must not start a service that will
// never be ready. Rules that are present but broken are no start-up error:
// the process stays up, not ready, until they are fixed.
func rulesPresent(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return usagef("%s: %s does not exist: mount a directory of rule files there (a ConfigMap in Kubernetes; the image ships none) or point %s at one",
			flagRef("rules"), path, "--rules")
	} else if err != nil {
		return usagef("%s: %v", flagRef("rules"), err)
	}
	return nil
}

// stringList is a flag taking comma-separated values, repeatable.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
