package im

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-resty/resty/v2"

	"github.com/friendflow/friendflow/actions"
)

// Defaults of Config.
const (
	DefaultEndpoint = "https://console.tim.qq.com"
	DefaultAdmin    = "administrator"
	// DefaultRate is each API's budget, in requests per second: half of
	// the 200/s Tencent grants each API by default, because Tencent
	// counts per app, and the app's own backend calls the same APIs.
	DefaultRate = 100
	// DefaultBatchRecipients is openim/batchsendmsg's second budget,
	// recipients per minute, as Tencent counts it (500 recipients are 500
	// messages): https://www.tencentcloud.com/document/product/1047/34920
	DefaultBatchRecipients = 12000
	// DefaultTimeout is above the 3 s the IM REST backend allows itself, so
	// the client does not give up on requests the server is still finishing.
	DefaultTimeout = 5 * time.Second
)

// maxResponse bounds what is read of a response. IM replies are small.
const maxResponse = 1 << 20

// Config configures a Client.
type Config struct {
	// Endpoint is a URL (https://console.tim.qq.com; http only to a loopback
	// address, for tests) or a region name, see ResolveEndpoint. Empty means
	// DefaultEndpoint.
	Endpoint  string
	SDKAppID  int64
	Admin     string // an App admin account; empty means DefaultAdmin
	SecretKey string // the console secret key that UserSigs are signed with
	// Rate is the budget of each REST API, in requests per second, as
	// Tencent counts them (each API its own); ≤ 0 means DefaultRate.
	Rate float64
	// APIRates overrides Rate for the APIs it names ("openim/sendmsg");
	// see APIs for the paths friendflow calls.
	APIRates map[string]float64
	// BatchRecipients is openim/batchsendmsg's budget in recipients per
	// minute; ≤ 0 means DefaultBatchRecipients.
	BatchRecipients int
	// Timeout bounds one HTTP request (not the wait for the rate limiter).
	// Zero means DefaultTimeout.
	Timeout    time.Duration
	Clock      func() time.Time // issues UserSigs; nil means time.Now
	HTTPClient *http.Client     // nil: a client of its own with a pooled keep-alive transport

	SigExpire time.Duration // validity of admin UserSigs; zero means DefaultSigExpire
	Logger    *slog.Logger  // nil means slog.Default()

	// Observe, when set, is told the outcome of every request (metrics):
	// path as in Call, result one of the Result* constants.
	Observe func(path, result string)
}

// Outcomes of one request, as told to Config.Observe.
const (
	ResultOK          = "ok"
	ResultRateLimited = "rate_limited" // a rate-limited code of the table (CodeTable): 10006, 60007, 60011, 60018, 60019
	ResultAPIError    = "api_error"    // any other ErrorCode
	ResultHTTPError   = "http_error"   // an HTTP status other than 200
	ResultFailed      = "failed"       // no response: network, timeout, or cancelled waiting for the rate limit
)

// Client calls the IM REST API as the admin account. It signs each request
// with a cached admin UserSig, keeps each API to its own request-rate
// budget (Tencent counts each API separately, so a burst of group adds
// must not hold up the welcome messages), and classifies failures for the
// retry policy. It is safe for concurrent use; a process should hold one.
type Client struct {
	endpoint string
	sdkAppID string
	admin    string
	timeout  time.Duration
	budgets  budgets
	signer   *Signer
	rc       *resty.Client
	log      *slog.Logger
	observe  func(path, result string)
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	endpoint, err := ResolveEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.SDKAppID <= 0 {
		return nil, errors.New("im: SDKAppID must be positive")
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("im: secret key is empty")
	}
	admin := cfg.Admin
	if admin == "" {
		admin = DefaultAdmin
	}
	budgets, err := newBudgets(cfg)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	// A copy, so that neither resty nor the redirect policy below changes
	// the caller's client.
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Transport = newTransport()
	}
	hc.Jar = nil
	// The API never redirects; following one would turn the POST into a GET
	// and carry the usersig elsewhere. A 3xx is reported as it is.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c := &Client{
		endpoint: endpoint,
		sdkAppID: strconv.FormatInt(cfg.SDKAppID, 10),
		admin:    admin,
		timeout:  timeout,
		budgets:  budgets,
		signer:   NewSigner(cfg.SDKAppID, cfg.SecretKey, cfg.SigExpire, cfg.Clock),
		log:      log,
		observe:  cfg.Observe,
	}
	c.rc = resty.NewWithClient(&hc).
		SetLogger(restyLogger{log}).
		SetHeader("User-Agent", "friendflow").
		SetHeader("Content-Type", "application/json; charset=utf-8").
		SetHeader("Accept", "application/json").
		SetResponseBodyLimit(maxResponse).
		SetRetryCount(0) // the workers own the retry policy
	return c, nil
}

// burst keeps bursts small: a twentieth of a second's budget, 1 to 10
// requests, so a queue backlog cannot exceed the per-second limit.
func burst(r float64) int {
	return int(min(10, max(1, math.Ceil(r/20))))
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100, // one host, many concurrent workers
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Admin is the identifier requests are made as.
func (c *Client) Admin() string { return c.admin }

// Endpoint is the resolved base URL.
func (c *Client) Endpoint() string { return c.endpoint }

// ResolveEndpoint turns the --im-endpoint value into a base URL: either a
// URL, or the name of the region the SDKAppID was created in, mapped to
// that region's primary domain: china, singapore, seoul, tokyo, frankfurt,
// mumbai, usa, jakarta. Plain http is accepted only for a loopback host:
// the URL carries the admin's UserSig.
func ResolveEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultEndpoint, nil
	}
	if !strings.Contains(s, "://") {
		if host := regionHost(strings.ToLower(s)); host != "" {
			return "https://" + host, nil
		}
		return "", fmt.Errorf("im: endpoint %q is neither a URL nor a region (china, singapore, seoul, tokyo, frankfurt, mumbai, usa, jakarta)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("im: endpoint: %w", err)
	}
	switch {
	case u.Host == "":
		return "", fmt.Errorf("im: endpoint %q has no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("im: endpoint %q must not carry user info, a query or a fragment", u.Redacted())
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return "", fmt.Errorf("im: endpoint %q: plain http is allowed only to a loopback address", s)
	default:
		return "", fmt.Errorf("im: endpoint %q: scheme must be https", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if strings.HasSuffix(u.Path, "/v4") {
		return "", fmt.Errorf("im: endpoint %q: leave out /v4, it is added to every request", s)
	}
	u.RawPath = ""
	return u.String(), nil
}

// regionHost maps a region name to its primary REST domain
// (https://www.tencentcloud.com/document/product/1047/34620).
func regionHost(region string) string {
	switch region {
	case "china":
		return "console.tim.qq.com"
	case "singapore":
		return "adminapisgp.im.qcloud.com"
	case "seoul":
		return "adminapikr.im.qcloud.com"
	case "tokyo":
		return "adminapijpn.im.qcloud.com"
	case "frankfurt":
		return "adminapiger.im.qcloud.com"
	case "mumbai":
		return "adminapiind.im.qcloud.com"
	case "usa":
		return "adminapiusa.im.qcloud.com"
	case "jakarta":
		return "adminapiidn.im.qcloud.com"
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error is a failure reported by the IM REST API: an envelope whose
// ErrorCode is not 0, or an HTTP status other than 200.
type Error struct {
	Path       string // "openim/sendmsg"
	HTTPStatus int    // 200 when the envelope carried the error
	Code       int    // the envelope's ErrorCode; 0 for HTTP-level failures
	Info       string // the envelope's ErrorInfo, or a snippet of the body
}

func (e *Error) Error() string {
	if e.Code != 0 || e.HTTPStatus == http.StatusOK {
		return fmt.Sprintf("im %s: error %d: %s", e.Path, e.Code, e.Info)
	}
	if e.Info == "" {
		return fmt.Sprintf("im %s: HTTP %d", e.Path, e.HTTPStatus)
	}
	return fmt.Sprintf("im %s: HTTP %d: %s", e.Path, e.HTTPStatus, e.Info)
}

// ErrNotSent is wrapped by the errors of a request that never left
// friendflow (no connection, or cancelled while waiting for the rate
// limit): unlike a request that got no answer, IM cannot have acted on it.
var ErrNotSent = errors.New("request not sent")

// envelope is the part every API response shares.
type envelope struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// Call POSTs body as JSON to {endpoint}/v4/{path} and decodes the response
// into out (when not nil): on success, and as far as it goes when IM
// answered with an error code (batch APIs list per-item results there).
// path is "service/command", e.g. "openim/sendmsg" (a leading "/" or "v4/"
// is tolerated). A nil body sends "{}"; []byte and json.RawMessage are
// sent as they are.
//
// The error, when not nil, is already classified with actions.Permanent or
// actions.Transient and wraps an *Error when the API answered. A rejected
// UserSig (70001, 20002) is renewed and the request repeated once, at once,
// within this call. Call waits for the API's rate budget first, as long as
// ctx allows.
func (c *Client) Call(ctx context.Context, path string, body, out any) error {
	svc, err := cleanPath(path)
	if err != nil {
		return actions.Permanent(err)
	}
	payload, err := encodeBody(body)
	if err != nil {
		return actions.Permanent(fmt.Errorf("im %s: %w", svc, err))
	}
	for attempt := 1; ; attempt++ {
		sig, err := c.signer.Sig(c.admin)
		if err != nil {
			return actions.Permanent(fmt.Errorf("im %s: %w", svc, err))
		}
		err = c.call(ctx, svc, payload, sig, out)
		if c.observe != nil {
			c.observe(svc, result(err))
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && isResign(apiErr.Code) {
			c.signer.Invalidate(c.admin, sig)
			if attempt == 1 {
				c.log.LogAttrs(ctx, slog.LevelWarn, "im: admin UserSig rejected, signing again",
					slog.String("path", svc), slog.Int("code", apiErr.Code))
				continue
			}
			return actions.Permanent(fmt.Errorf("%w (UserSig rejected again after renewal: check the secret key, SDKAppID, admin account and the system clock)", err))
		}
		return err
	}
}

func (c *Client) call(ctx context.Context, svc string, payload []byte, sig string, out any) error {
	if err := c.budgets.of(svc).Wait(ctx); err != nil {
		return actions.Transient(fmt.Errorf("im %s: %w: waiting for the rate limit: %w", svc, ErrNotSent, err), 0)
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	start := time.Now()
	u := c.url(svc, sig)
	resp, err := c.rc.R().SetContext(rctx).SetBody(payload).Post(u)
	if err != nil {
		err = redactURLError(err)
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			// No connection, so no request: IM cannot have acted on it.
			err = fmt.Errorf("%w: %w", ErrNotSent, err)
		} else if ctx.Err() == nil && rctx.Err() != nil {
			err = fmt.Errorf("timed out after %v: %w", c.timeout, err)
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "im: request failed", slog.String("path", svc),
			slog.String("took", time.Since(start).String()), slog.String("err", err.Error()))
		return actions.Transient(fmt.Errorf("im %s: %w", svc, err), 0)
	}
	status := resp.StatusCode()
	raw := resp.Body()
	c.log.LogAttrs(ctx, slog.LevelDebug, "im: response", slog.String("path", svc),
		slog.Int("status", status), slog.String("took", time.Since(start).String()))

	if status != http.StatusOK {
		// Only 200 carries an envelope; which of the other statuses are
		// worth a retry is the policy every HTTP kind shares.
		e := &Error{Path: svc, HTTPStatus: status, Info: snippet(raw, sig)}
		if retry, _ := actions.HTTPRetrier.Check(status, nil); retry {
			return actions.Transient(e, actions.ParseRetryAfter(resp.Header().Get("Retry-After"), time.Now()))
		}
		return actions.Permanent(e)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.ActionStatus == "" {
		// A 200 that is not an IM envelope comes from something in between
		// (a proxy, a captive portal); the request may not have reached IM.
		return actions.Transient(&Error{Path: svc, HTTPStatus: status, Info: "response is not an IM envelope: " + snippet(raw, sig)}, 0)
	}
	if env.ErrorCode != 0 || env.ActionStatus == "FAIL" {
		if out != nil {
			// Best effort: batch APIs list per-item results (ErrorList,
			// MemberList) with a failure too.
			_ = json.Unmarshal(raw, out)
		}
		return classify(&Error{Path: svc, HTTPStatus: status, Code: env.ErrorCode, Info: redactSig(env.ErrorInfo, sig)})
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			// The request took effect: repeating it would do it twice.
			return actions.Permanent(fmt.Errorf("im %s: succeeded, but decoding the response failed: %w", svc, err))
		}
	}
	return nil
}

func (c *Client) url(svc, sig string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	q := url.Values{
		"sdkappid":    {c.sdkAppID},
		"identifier":  {c.admin},
		"usersig":     {sig},
		"random":      {strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:])), 10)},
		"contenttype": {"json"},
	}
	return c.endpoint + "/v4/" + svc + "?" + q.Encode()
}

func cleanPath(path string) (string, error) {
	p := strings.TrimPrefix(strings.TrimPrefix(path, "/"), "v4/")
	svc, cmd, ok := strings.Cut(p, "/")
	if !ok || !isName(svc) || !isName(cmd) {
		return "", fmt.Errorf("im: invalid API path %q (want service/command, e.g. openim/sendmsg)", path)
	}
	return p, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return []byte("{}"), nil
	case json.RawMessage:
		if !json.Valid(b) {
			return nil, errors.New("body is not valid JSON")
		}
		return b, nil
	case []byte:
		if !json.Valid(b) {
			return nil, errors.New("body is not valid JSON")
		}
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // message text stays as written
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("encoding body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// classify marks an API error with its retry class, from codeTable:
// transient and rate-limited codes are worth a retry (after their wait),
// every other code is permanent. An *Error's class also decides how the
// batch kinds narrow a failed request (see Class).
func classify(e *Error) error {
	c, _ := Lookup(e.Code)
	switch c.Class {
	case ClassTransient, ClassRateLimited:
		return actions.Transient(e, c.Wait)
	}
	return actions.Permanent(e)
}

// result names the outcome of one request for Config.Observe.
func result(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ResultOK
	case !errors.As(err, &e):
		return ResultFailed
	case classOf(e.Code) == ClassRateLimited && e.Code != 0:
		return ResultRateLimited
	case e.Code != 0:
		return ResultAPIError
	case e.HTTPStatus != http.StatusOK:
		return ResultHTTPError
	}
	return ResultAPIError
}

// isResign reports codes that a fresh admin UserSig may cure.
func isResign(code int) bool { return classOf(code) == ClassResign }

// snippet is a short printable excerpt of a body for error messages.
func snippet(b []byte, secret string) string {
	const max = 200
	s := redactSig(string(b), secret)
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// redactSig replaces the UserSig sig in s with actions.Redacted, also as
// the request URL carried it: a UserSig's '*' travels as %2A, and servers
// quote the URL they got.
func redactSig(s, sig string) string {
	if sig == "" {
		return s
	}
	for _, form := range [...]string{sig, url.QueryEscape(sig)} {
		s = strings.ReplaceAll(s, form, actions.Redacted)
	}
	return s
}

// redactURLError replaces the URL of a *url.Error, which carries the
// usersig in its query, with one whose query is masked.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: maskAll(ue.URL), Err: ue.Err}
}

// restyLogger sends resty's own messages to slog, with any URL's usersig
// masked (resty puts request URLs into some of its messages).
type restyLogger struct{ l *slog.Logger }

func (r restyLogger) Errorf(format string, v ...any) { r.out(slog.LevelError, format, v) }
func (r restyLogger) Warnf(format string, v ...any)  { r.out(slog.LevelWarn, format, v) }
func (r restyLogger) Debugf(format string, v ...any) { r.out(slog.LevelDebug, format, v) }

func (r restyLogger) out(level slog.Level, format string, v []any) {
	if !r.l.Enabled(context.Background(), level) {
		return
	}
	r.l.Log(context.Background(), level, "im: resty: "+maskAll(fmt.Sprintf(format, v...)))
}

// maskAll masks every usersig=… in free text.
func maskAll(s string) string {
	const key = "usersig="
	var b strings.Builder
	for {
		i := strings.Index(s, key)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+len(key)])
		b.WriteString("REDACTED")
		s = s[i+len(key):]
		j := strings.IndexAny(s, "& \t\n\"'")
		if j < 0 {
			return b.String()
		}
		s = s[j:]
	}
}
