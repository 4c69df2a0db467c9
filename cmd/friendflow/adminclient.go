package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// adminClientFlags are the flags of every command that calls a running
// instance's admin API; they alone, of those commands' flags, have env
// twins (hasEnvTwin).
var adminClientFlags = map[string]bool{"admin-url": true, "admin-token": true, "admin-token-file": true}

// adminFlags holds the admin client's flags as parsed.
type adminFlags struct {
	url       string
	legacy    string // --admin-listen, the spelling before --admin-url
	token     secretValue
	tokenFile string
}

// addAdminFlags declares the admin client's flags on fs.
func addAdminFlags(fs *flag.FlagSet) *adminFlags {
	f := &adminFlags{}
	fs.StringVar(&f.url, "admin-url", "http://127.0.0.1:9090", "admin API of the running friendflow (its --admin-listen)")
	fs.StringVar(&f.legacy, "admin-listen", "", "deprecated spelling of --admin-url (host:port)")
	fs.Var(&f.token, "admin-token", "admin API token (prefer --admin-token-file: a command line is visible to every local user)")
	fs.StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin API token (friendflow serve's --admin-token-file)")
	return f
}

// client resolves the flags into a client; cmdline says which flags the
// command line set (parseArgsFrom).
func (f *adminFlags) client(cmdline map[string]bool) (*adminClient, error) {
	given := f.url
	if f.legacy != "" {
		if cmdline["admin-url"] {
			return nil, usagef("--admin-listen is the old spelling of --admin-url; give only --admin-url")
		}
		given = f.legacy
	}
	raw := given
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%s: %q is not an http(s) URL of friendflow's admin listener", flagRef("admin-url"), given)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	token, err := readSecret("admin-token", &f.token, f.tokenFile, cmdline)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: u.String(), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// adminClient calls a running friendflow's admin API: every command that
// does (dlq, reload, rules, backtest, events export) goes through it, so
// they all authenticate, time out and explain failures the same way.
type adminClient struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token []byte
	http  *http.Client
}

// adminError is an answer the admin API gave with a status other than 2xx.
type adminError struct {
	method, path string
	status       int
	msg          string
}

func (e *adminError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, http.StatusText(e.status), e.msg)
	if e.status == http.StatusUnauthorized {
		msg += fmt.Sprintf(" (give the token friendflow serve was started with: %s)", flagRef("admin-token-file"))
	}
	return msg
}

// do sends one request (a JSON body when body is not nil) and returns the
// status and the body of the answer. Only a failure to get an answer is an
// error: callers decide what each status means.
func (c *adminClient) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(c.token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("cannot reach friendflow's admin API at %s: is it running, and is %s its --admin-listen? %w", c.base, flagRef("admin-url"), err)
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, raw, nil
}

// call is do for requests whose only success is a 2xx answer.
func (c *adminClient) call(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	status, raw, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, &adminError{method, path, status, errorMessage(raw)}
	}
	return raw, nil
}

// errorMessage is the "error" of a JSON error body, or the body on one line.
func errorMessage(raw []byte) string {
	var e admin.ErrorBody
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return oneLine(e.Error, 300)
	}
	return oneLine(string(raw), 300)
}

// decodeAnswer reads an admin API answer (what names its request) into
// the type the server encoded it from, declared in engine/admin's
// answers.go.
func decodeAnswer[T any](raw []byte, what string) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return v, nil
}

// adminOutput is what a printing admin command declares: the flags that
// reach a deployment and -o/--output text|json.
type adminOutput struct {
	admin  *adminFlags
	asJSON func() (bool, error)
}

// declareAdminOutput declares a printing admin command's flags on fs.
func declareAdminOutput(fs *flag.FlagSet) adminOutput {
	return adminOutput{addAdminFlags(fs), declareJSONOutput(fs)}
}

// open reads -o and the admin flags: the client to call, and whether the
// command prints the API's JSON as it came.
func (o adminOutput) open(inv *invocation) (*adminClient, bool, error) {
	asJSON, err := o.asJSON()
	if err != nil {
		return nil, false, err
	}
	client, err := o.admin.client(inv.cmdline)
	return client, asJSON, err
}

// answer calls the admin API. With asJSON it writes the answer to w as it
// came and returns nil: nothing is left to print. Otherwise it returns the
// answer decoded as T, the type the server encoded it from.
func answer[T any](ctx context.Context, c *adminClient, asJSON bool, w io.Writer, method, path string, body []byte) (*T, error) {
	raw, err := c.call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if asJSON {
		_, err := w.Write(raw)
		return nil, err
	}
	what, _, _ := strings.Cut(path, "?")
	return decodeAnswer[T](raw, method+" "+what)
}
