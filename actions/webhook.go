package actions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Webhook limits.
const (
	MaxWebhookBody     = 1 << 20  // request body; larger is a permanent failure
	maxWebhookResponse = 64 << 10 // read of a response, enough to reuse the connection
	maxWebhookTimeout  = 5 * time.Minute
	maxRedirects       = 5
)

// Headers a webhook always sets.
const (
	HeaderDelivery  = "X-Friendflow-Delivery"  // the job id: the same on every attempt
	HeaderSignature = "X-Friendflow-Signature" // sha256=<hex HMAC-SHA256(secret, body)>
)

// Webhook is the webhook kind: one HTTP request per job. The zero value is
// ready to use.
type Webhook struct {
	// Client sends the requests; nil means a client of the Webhook's own,
	// with pooled keep-alive connections and the proxy from the
	// environment. Its Timeout and CheckRedirect are not used: each job's
	// timeout and follow_redirects decide.
	Client *http.Client
	// UserAgent is sent as User-Agent; empty means "friendflow".
	UserAgent string

	once sync.Once
	own  *http.Client
}

var webhookSpec = Spec{
	Name: "webhook",
	Doc: "Sends an HTTP request. Succeeds on 2xx; network errors, timeouts, 408, 429 and 5xx are retried " +
		"(honouring Retry-After); other statuses are permanent failures. Every attempt carries the same " +
		HeaderDelivery + " header (the job id) so the receiver can drop duplicates, and with a secret an " +
		HeaderSignature + ": sha256=<hex HMAC-SHA256 of the body> header.",
	Params: []Param{
		{Name: "url", Type: String, Required: true, Doc: "http or https URL"},
		{Name: "method", Type: String, Default: "POST", Enum: []string{"POST", "PUT", "PATCH", "GET", "DELETE"}, Doc: "HTTP method"},
		{Name: "headers", Type: StringMap, Secret: true, Doc: "extra request headers (values often carry credentials, so they are redacted like secrets)"},
		{Name: "body", Type: Any, Doc: `request body: a string is sent as it is, any other value as JSON; default {"event": the event, "rule": the rule's name, "job_id": the job id}`},
		{Name: "timeout", Type: Duration, Default: 5 * time.Second, Doc: "time allowed for the whole request, at most 5m"},
		{Name: "secret", Type: String, Secret: true, Doc: "signs the body: " + HeaderSignature + ": sha256=<hex HMAC-SHA256(secret, body)>"},
		{Name: "follow_redirects", Type: Bool, Default: false, Doc: "follow up to 5 redirects; otherwise a 3xx is a permanent failure"},
	},
	Validate: validateWebhook,
}

// Spec implements Kind.
func (w *Webhook) Spec() Spec { return webhookSpec }

func validateWebhook(p map[string]any) error {
	if err := checkWebhook(p); err != nil {
		return err
	}
	if b, ok := p["body"]; ok && !containsDeferred(b) {
		if _, err := encodeHookBody(b); err != nil {
			return &ParamError{Path: "body", Msg: err.Error()}
		}
	}
	return nil
}

// checkWebhook is validateWebhook without the body, which Do encodes
// (and checks) once, itself.
func checkWebhook(p map[string]any) error {
	if s, ok := p["url"].(string); ok {
		if _, err := parseHookURL(s); err != nil {
			return &ParamError{Path: "url", Msg: err.Error()}
		}
	}
	if h, ok := p["headers"].(map[string]string); ok {
		for k, v := range h {
			if err := checkHeader(k, v); err != nil {
				return &ParamError{Path: "headers." + k, Msg: err.Error()}
			}
		}
	}
	if d, ok := p["timeout"].(time.Duration); ok && (d <= 0 || d > maxWebhookTimeout) {
		return &ParamError{Path: "timeout", Msg: fmt.Sprintf("%v is outside (0, %v]", d, maxWebhookTimeout)}
	}
	return nil
}

func containsDeferred(v any) bool {
	switch x := v.(type) {
	case Deferred:
		return true
	case map[string]any:
		for _, e := range x {
			if containsDeferred(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if containsDeferred(e) {
				return true
			}
		}
	}
	return false
}

func parseHookURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("invalid URL") // url's message repeats the URL, which may hold a token
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for _, r := range name {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return fmt.Errorf("invalid header name %q", name)
		}
	}
	switch http.CanonicalHeaderKey(name) {
	case HeaderDelivery, HeaderSignature, "Content-Length", "Transfer-Encoding", "Connection":
		return fmt.Errorf("header %s is set by friendflow", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return errors.New("header value contains a line break or NUL")
	}
	return nil
}

// hookEvent is the default body. Event stays raw: it is already JSON.
type hookEvent struct {
	Event json.RawMessage `json:"event"`
	Rule  string          `json:"rule"`
	JobID string          `json:"job_id"`
}

func encodeHookBody(v any) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("cannot encode as JSON: %w", err)
		}
		b = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	if len(b) > MaxWebhookBody {
		return nil, fmt.Errorf("body is %d bytes, more than the %d allowed", len(b), MaxWebhookBody)
	}
	return b, nil
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	w.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		w.own = &http.Client{Transport: t}
	})
	return w.own
}

var errRedirect = errors.New("redirect refused")

// Do implements Kind.
func (w *Webhook) Do(ctx context.Context, job Job, params map[string]any) error {
	if err := checkWebhook(params); err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	rawURL, _ := params["url"].(string)
	u, err := parseHookURL(rawURL)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	method, _ := params["method"].(string)
	if method == "" {
		method = http.MethodPost
	}
	where := method + " " + redactURL(u)

	var body []byte
	if b, ok := params["body"]; ok {
		if containsDeferred(b) {
			return Permanent(fmt.Errorf("webhook %s: body was not rendered", where))
		}
		body, err = encodeHookBody(b)
	} else {
		ev := job.Event
		if len(ev) == 0 || !json.Valid(ev) {
			ev = json.RawMessage("null")
		}
		body, err = encodeHookBody(hookEvent{Event: ev, Rule: job.Rule, JobID: job.ID})
	}
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", where, err))
	}

	timeout, _ := params["timeout"].(time.Duration)
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", where, err))
	}
	ua := w.UserAgent
	if ua == "" {
		ua = "friendflow"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Content-Type", "application/json")
	headers, _ := params["headers"].(map[string]string)
	for k, v := range headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	req.Header.Set(HeaderDelivery, job.ID)
	if secret, _ := params["secret"].(string); secret != "" {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		req.Header.Set(HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
	}

	follow, _ := params["follow_redirects"].(bool)
	c := *w.client() // a copy: the redirect policy is per job
	c.Timeout = 0    // rctx bounds the request
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		switch {
		case !follow:
			return http.ErrUseLastResponse
		case len(via) >= maxRedirects:
			return fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
		case r.URL.Scheme != "http" && r.URL.Scheme != "https":
			return fmt.Errorf("%w: to a %s URL", errRedirect, r.URL.Scheme)
		}
		return nil
	}

	resp, err := c.Do(req)
	if err != nil {
		msg := "request failed"
		if ctx.Err() == nil && rctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %v", timeout)
		}
		err = fmt.Errorf("webhook %s: %s: %w", where, msg, unwrapURLError(err))
		if errors.Is(err, errRedirect) {
			return Permanent(err)
		}
		return Transient(err, 0)
	}
	// Read what the server sends, within a limit, so the connection can
	// be reused; the start of it goes into error messages.
	got, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))
	resp.Body.Close()

	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return nil
	}
	fail := fmt.Errorf("webhook %s: %s%s", where, resp.Status, bodySnippet(got))
	switch {
	case status >= 300 && status < 400:
		if loc := resp.Header.Get("Location"); loc != "" {
			if lu, err := u.Parse(loc); err == nil {
				loc = redactURL(lu)
			}
			fail = fmt.Errorf("%w (redirect to %s not followed; set follow_redirects)", fail, loc)
		}
		return Permanent(fail)
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return Transient(fail, ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return Permanent(fail)
}

// unwrapURLError drops the *url.Error layer, whose message repeats the
// whole URL (query tokens included); the caller names the URL redacted.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL is u for messages: no user info, and the query (which often
// carries a token) elided.
func redactURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	s := r.String()
	if base, _, ok := strings.Cut(s, "?"); ok {
		s = base + "?…"
	}
	return s
}

// bodySnippet is ": <start of the body>" for error messages, or "".
func bodySnippet(b []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if s == "" {
		return ""
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return ": " + s
}

// ParseRetryAfter reads a Retry-After header value, delay-seconds or an
// HTTP-date, as a wait from now. Absent, malformed or past values are 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
