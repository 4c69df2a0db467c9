package actions

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/friendflow/friendflow/internal/tracing"
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
	HeaderDelivery = "X-Friendflow-Delivery" // Job.DeliveryID: the same on every attempt and every copy of the callback
	// HeaderSignature is the deprecated signature, sent only with
	// legacy_signature: sha256=<hex HMAC-SHA256(secret, body)>. It covers
	// neither a time nor the delivery id, so a captured request verifies
	// forever; it goes in the next release.
	HeaderSignature = "X-Friendflow-Signature"
)

// The Standard Webhooks headers a webhook with a secret sets
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
// "Webhook headers"), so receivers can verify with its libraries.
const (
	HeaderWebhookID        = "Webhook-Id"        // Job.DeliveryID, as HeaderDelivery
	HeaderWebhookTimestamp = "Webhook-Timestamp" // the attempt's time, Unix seconds
	HeaderWebhookSignature = "Webhook-Signature" // "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per secret, space-separated
)

// whsecPrefix marks a Standard Webhooks secret: the key is the base64
// after it.
const whsecPrefix = "whsec_"

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
		"(honouring Retry-After, up to max_backoff); other statuses are permanent failures. Every attempt carries the same " +
		HeaderDelivery + " header, derived from the event's whole content (command, SdkAppid, the pair, EventTime and " +
		"every other field), the rule and the action's place in it, so the receiver can drop duplicates, also of a " +
		"callback Tencent sent again, and never drops another event; " +
		"and with a secret the Standard Webhooks signature (https://www.standardwebhooks.com): webhook-id (the same id), " +
		"webhook-timestamp (the attempt's Unix time) and webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>.",
	Params:   ParamsOf[WebhookParams](),
	Validate: validateWebhook,
}

// Spec implements Kind.
func (w *Webhook) Spec() Spec { return webhookSpec }

// WebhookParams are a webhook job's parameters.
type WebhookParams struct {
	URL             string
	Method          string
	Headers         map[string]string
	Body            any // nil: the default body, see hookEvent
	Timeout         time.Duration
	Secret          string // empty with no Secrets: unsigned
	Secrets         []string
	LegacySignature bool
	FollowRedirects bool
}

// DeclareParams implements Declarer.
func (p *WebhookParams) DeclareParams(d *Decl) {
	d.Param(&p.URL, Param{Name: "url", Type: URL, Example: `https://crm.internal/hooks/friend/${ To_Account }`, Required: true, Doc: "http or https URL; values a template inserts after its first literal text are escaped for the path or the query (`raw(...)` inserts one as it is)"})
	d.Param(&p.Method, Param{Name: "method", Example: `PUT`, Default: "POST", Enum: []string{"POST", "PUT", "PATCH", "GET", "DELETE"}, Doc: "HTTP method"})
	d.Param(&p.Headers, Param{Name: "headers", Example: `{Authorization: "Bearer ${ env(\"CRM_TOKEN\") }"}`, Secret: true, Doc: "extra request headers (values often carry credentials, so they are redacted like secrets)"})
	d.Param(&p.Body, Param{Name: "body", Example: `{user: "${ From_Account }", source: friendflow}`, Doc: `request body: a string is sent as it is, any other value as JSON; default {"event": the event, "rule": the rule's name, "job_id": the job id}`})
	d.Param(&p.Timeout, Param{Name: "timeout", Example: `10s`, Default: 5 * time.Second, Doc: "time allowed for the whole request, at most 5m"})
	d.Param(&p.Secret, Param{Name: "secret", Example: `"${ env(\"HOOK_SECRET\") }"`, Secret: true, Doc: "signs each request the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature); a whsec_ secret is the base64 of the key, as its libraries expect, any other is used as it is"})
	d.Param(&p.Secrets, Param{Name: "secrets", Example: `["${ env(\"HOOK_SECRET\") }", "${ env(\"HOOK_SECRET_OLD\") }"]`, Secret: true, Doc: "more secrets, for a rotation: one signature each in webhook-signature, and the receiver accepts any"})
	d.Param(&p.LegacySignature, Param{Name: "legacy_signature", Example: `true`, Default: false, Doc: "deprecated, removed in the next release: also send " + HeaderSignature + ": sha256=<hex HMAC-SHA256(secret, body)>, which covers no time or id and so can be replayed"})
	d.Param(&p.FollowRedirects, Param{Name: "follow_redirects", Example: `true`, Default: false, Doc: "follow up to 5 redirects; otherwise a 3xx is a permanent failure"})
}

// validateWebhook checks what the types cannot. A Deferred value fails the
// type assertions, so its checks wait for the rendered one.
func validateWebhook(p map[string]any) error {
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
	if err := checkSecrets(p); err != nil {
		return err
	}
	if b, ok := p["body"]; ok && !HasDeferred(b) {
		if _, err := encodeHookBody(b); err != nil {
			return &ParamError{Path: "body", Msg: err.Error()}
		}
	}
	return nil
}

// checkSecrets refuses a whsec_ secret whose key is no base64, and a
// legacy signature without a secret to make it with.
func checkSecrets(p map[string]any) error {
	if s, ok := p["secret"].(string); ok {
		if _, err := signingKey(s); err != nil {
			return &ParamError{Path: "secret", Msg: err.Error()}
		}
	}
	if l, ok := p["secrets"].([]string); ok {
		for i, s := range l {
			if _, err := signingKey(s); err != nil {
				return &ParamError{Path: "secrets", Msg: fmt.Sprintf("item %d: %v", i+1, err)}
			}
		}
	}
	if on, _ := p["legacy_signature"].(bool); on {
		if _, ok := p["secret"]; !ok {
			return &ParamError{Path: "legacy_signature", Msg: "needs secret, the key of the old signature"}
		}
	}
	return nil
}

// signingKey is the HMAC key of a secret: the decoded base64 after whsec_
// (the Standard Webhooks serialization), or the secret's own bytes. The
// messages never quote the secret.
func signingKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, whsecPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("a whsec_ secret must be base64 after the prefix")
	}
	if len(key) == 0 {
		return nil, errors.New("a whsec_ secret has no key after the prefix")
	}
	return key, nil
}

// sign sets the Standard Webhooks headers for id and body at now: one v1
// signature per secret, so a receiver holding either the old or the new
// secret during a rotation verifies. id is a DeliveryID, hex and dashes:
// it holds no '.', which the signed content uses as its separator.
func sign(h http.Header, p WebhookParams, id string, body []byte, now time.Time) error {
	secrets := p.Secrets
	if p.Secret != "" {
		secrets = append([]string{p.Secret}, secrets...)
	}
	if len(secrets) == 0 {
		return nil
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := signingKey(s)
		if err != nil {
			return err
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, ts)
	h.Set(HeaderWebhookSignature, strings.Join(sigs, " "))
	if p.LegacySignature && p.Secret != "" {
		m := hmac.New(sha256.New, []byte(p.Secret))
		m.Write(body)
		h.Set(HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	return nil
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
	case HeaderDelivery, HeaderSignature, HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature,
		"Content-Length", "Transfer-Encoding", "Connection":
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

// Do implements Kind: build the request from the parameters, send it,
// and classify the response.
func (w *Webhook) Do(ctx context.Context, job Job, params map[string]any) error {
	p, err := Decode[WebhookParams](webhookSpec, params)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", err))
	}
	call, err := w.build(job, p)
	if err != nil {
		return Permanent(err)
	}
	resp, body, err := w.send(ctx, call)
	if err != nil {
		return err
	}
	return call.verdict(resp, body)
}

// hookCall is one webhook request, built from a job's parameters.
type hookCall struct {
	req     *http.Request // without a deadline: send gives it the timeout
	where   string        // the method and the redacted URL, for messages
	timeout time.Duration
	follow  bool
}

// build makes the request: the body (the given one or the default), the
// headers, the delivery id and the signature.
func (w *Webhook) build(job Job, p WebhookParams) (*hookCall, error) {
	u, err := parseHookURL(p.URL)
	if err != nil {
		return nil, fmt.Errorf("webhook: url: %w", err)
	}
	call := &hookCall{where: p.Method + " " + RedactURL(u), timeout: p.Timeout, follow: p.FollowRedirects}
	body, err := hookBody(job, p.Body)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", call.where, err)
	}
	call.req, err = http.NewRequest(p.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", call.where, err)
	}
	h := call.req.Header
	h.Set("User-Agent", cmp.Or(w.UserAgent, "friendflow"))
	h.Set("Content-Type", "application/json")
	for k, v := range p.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			call.req.Host = v
			continue
		}
		h.Set(k, v)
	}
	id := job.DeliveryID()
	h.Set(HeaderDelivery, id)
	if err := sign(h, p, id, body, time.Now()); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", call.where, err)
	}
	return call, nil
}

// hookBody encodes the given body, or without one the default: the event,
// the rule and the job id.
func hookBody(job Job, given any) ([]byte, error) {
	if given != nil {
		return encodeHookBody(given)
	}
	ev := job.Event
	if len(ev) == 0 || !json.Valid(ev) {
		ev = json.RawMessage("null")
	}
	return encodeHookBody(hookEvent{Event: ev, Rule: job.Rule, JobID: job.ID})
}

// send makes the request within its timeout and reads the start of the
// response, enough to reuse the connection and to quote in errors. An
// error is a request without a response, already classified: a refused
// redirect is permanent, anything else (network, timeout) transient.
func (w *Webhook) send(ctx context.Context, call *hookCall) (*http.Response, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, call.timeout)
	defer cancel()
	// With tracing on, the job's span goes along as a W3C traceparent, so
	// the receiver's trace joins the job's; off, ctx holds no span and
	// nothing is set.
	tracing.Inject(ctx, call.req.Header)
	resp, err := w.clientFor(call.follow).Do(call.req.WithContext(rctx))
	if err != nil {
		msg := "request failed"
		if ctx.Err() == nil && rctx.Err() != nil {
			msg = fmt.Sprintf("timed out after %v", call.timeout)
		}
		err = fmt.Errorf("webhook %s: %s: %w", call.where, msg, unwrapURLError(err))
		if errors.Is(err, errRedirect) {
			return nil, nil, Permanent(err)
		}
		return nil, nil, Transient(err, 0)
	}
	got, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse))
	resp.Body.Close()
	return resp, got, nil
}

// clientFor is the Webhook's client with a job's redirect policy.
func (w *Webhook) clientFor(follow bool) *http.Client {
	c := *w.client() // a copy: the redirect policy is per job
	c.Timeout = 0    // send's context bounds the request
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
	return &c
}

// verdict is Do's result for a response: HTTPRetrier decides, a retry
// waits at least the server's Retry-After, and a redirect not followed
// says where it pointed.
func (call *hookCall) verdict(resp *http.Response, body []byte) error {
	retry, err := HTTPRetrier.Check(resp.StatusCode, body)
	switch {
	case err == nil:
		return nil
	case retry:
		return Transient(fmt.Errorf("webhook %s: %w", call.where, err), ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	err = fmt.Errorf("webhook %s: %w", call.where, err)
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if lu, perr := call.req.URL.Parse(loc); perr == nil {
			loc = RedactURL(lu)
		}
		err = fmt.Errorf("%w (redirect to %s not followed; set follow_redirects)", err, loc)
	}
	return Permanent(err)
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
