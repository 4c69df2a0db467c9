package actions

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Retry is an action's retry policy: at most Attempts runs, the n-th retry
// waiting a jittered Backoff·2ⁿ⁻¹ capped at MaxBackoff (and never less
// than the action's own Retry-After, which MaxBackoff caps too). Rules
// carry it from the rule file to the queue, which stores it with each job.
//
// The JSON names are those of queued jobs in the previous release's message
// format: changing them would lose the policy of jobs stored by it.
type Retry struct {
	Attempts   int           `json:"attempts,omitempty"`
	Backoff    time.Duration `json:"backoff,omitempty"`
	MaxBackoff time.Duration `json:"max_backoff,omitempty"`
}

// DefaultRetry is the policy of an action whose rule sets no retry, and it
// fills in the zero fields of any other (see WithDefaults). It is the only
// place the defaults are written; treat it as a constant.
var DefaultRetry = Retry{Attempts: 10, Backoff: time.Second, MaxBackoff: 5 * time.Minute}

// WithDefaults returns r with each zero or negative field replaced by
// DefaultRetry's. A job stored without a policy runs with the defaults.
func (r Retry) WithDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetry.Attempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultRetry.Backoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultRetry.MaxBackoff
	}
	return r
}

// Retrier classifies the responses of HTTP APIs for the retry policy, in
// one place for every kind that calls one (webhook; the IM client for its
// HTTP-level failures).
type Retrier struct {
	// RetryCodes are the statuses, besides 5xx, that another attempt may
	// turn into a success.
	RetryCodes []int
}

// HTTPRetrier retries 5xx, 408 Request Timeout and 429 Too Many Requests:
// the server's trouble or a wait. Any other failure, 3xx included, will
// answer the same request the same way.
var HTTPRetrier = Retrier{RetryCodes: []int{http.StatusRequestTimeout, http.StatusTooManyRequests}}

// Check classifies a response by its status code: a 2xx is a success
// (false, nil); otherwise err names the status with the start of body, and
// retry says whether another attempt may succeed.
func (r Retrier) Check(statusCode int, body []byte) (retry bool, err error) {
	if statusCode >= 200 && statusCode < 300 {
		return false, nil
	}
	status := strconv.Itoa(statusCode)
	if text := http.StatusText(statusCode); text != "" {
		status += " " + text
	}
	retry = statusCode >= 500 || slices.Contains(r.RetryCodes, statusCode)
	return retry, errors.New(status + bodySnippet(body))
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
