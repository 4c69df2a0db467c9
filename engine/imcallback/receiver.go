package imcallback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/rules/imevent"
	"golang.org/x/time/rate"
)

// Handler is the engine seam: it gets every accepted callback and decides
// the reply. An error means the callback's work could not be accepted
// (nothing of it was kept) and becomes a FAIL reply.
type Handler interface {
	Handle(ctx context.Context, cb *Callback) (Reply, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cb *Callback) (Reply, error)

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, cb *Callback) (Reply, error) { return f(ctx, cb) }

// Callback results, the values of the result label of the callbacks metric.
const (
	ResultOK       = "ok"
	ResultRejected = "rejected"
	ResultIgnored  = "ignored"
	ResultFailed   = "failed"
)

// Rejection reasons: a closed set, so they can be metric labels.
const (
	ReasonMethod          = "method"
	ReasonTooLarge        = "too_large"
	ReasonRead            = "read_error"
	ReasonMalformed       = "malformed"
	ReasonCommandMismatch = "command_mismatch"
	ReasonPairs           = "pairs"
	ReasonSdkAppid        = "sdkappid"
	ReasonSignMissing     = "sign_missing"
	ReasonSignBad         = "sign_bad"
	ReasonSignStale       = "sign_stale"
	ReasonSignFuture      = "sign_future"
)

// DefaultMaxBody is the least callback body limit: Tencent's friend
// callbacks are a few hundred bytes. The limit is MaxPairs × PairBytes when
// that is larger.
const DefaultMaxBody = 1 << 20

// Receiver is the http.Handler for Tencent IM callbacks. It checks
// everything that can be checked before any work is accepted: method, size,
// signature, SdkAppid and the body's shape. Only then does it pass the
// callback to the Handler.
type Receiver struct {
	SdkAppid int
	// Token is the callback authentication token; empty disables the Sign
	// check. It is a secret: never logged.
	Token   []byte
	MaxSkew time.Duration // allowed |now - RequestTime|; 0 means 60s
	MaxBody int64         // 0 means DefaultMaxBody; raised to MaxPairs × PairBytes
	// MaxPairs caps a callback's pair list; 0 means DefaultMaxPairs. A
	// callback over it is refused whole (FAIL, reason pairs) before any
	// of it is stored.
	MaxPairs int
	Handler  Handler
	Logger   *slog.Logger
	Now      func() time.Time // nil: time.Now
	// Observe, when set, is told the outcome of every request: command is
	// one of imevent.Commands or "other", reason is empty unless rejected.
	Observe func(command, result, reason string, took time.Duration)
	// Unsigned, when set, is called for each request accepted without a
	// Sign check (Token empty): anyone who reaches the listener can send
	// those.
	Unsigned func()
	// RejectLogs, when set, limits the "callback rejected" lines: a flood
	// of forged requests must not become a flood of log. Rejections beyond
	// it are not logged; Suppressed is called for each, and the next line
	// written says how many were left out.
	RejectLogs *rate.Limiter
	Suppressed func()

	suppressed atomic.Int64 // rejections not logged since the last line
	appid      atomic.Pointer[appidText]
}

// appidText is SdkAppid in decimal, made once rather than per request.
type appidText struct {
	n int
	s string
}

// ownAppid is rc.SdkAppid in decimal.
func (rc *Receiver) ownAppid() string {
	if t := rc.appid.Load(); t != nil && t.n == rc.SdkAppid {
		return t.s
	}
	t := &appidText{rc.SdkAppid, strconv.Itoa(rc.SdkAppid)}
	rc.appid.Store(t)
	return t.s
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type rejection struct {
	status int
	reason string // one of the Reason constants
	msg    string
}

func (rc *Receiver) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

func (rc *Receiver) logger() *slog.Logger {
	if rc.Logger != nil {
		return rc.Logger
	}
	return slog.Default()
}

// ServeHTTP implements http.Handler.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := rc.now()
	q := parseCallbackQuery(r.URL.RawQuery)
	cb := &Callback{
		ID:          NewID(),
		Command:     q.Command,
		ClientIP:    q.ClientIP,
		OptPlatform: q.OptPlatform,
		ReceivedAt:  start,
	}
	log := rc.logger()
	reject := func(rj rejection) {
		rc.logRejection(r, cb, rj)
		if rj.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodPost)
		}
		// Tencent's own requests are not rejected; whoever is, gets no
		// idle connection to hold (and a body not read is not drained).
		w.Header().Set("Connection", "close")
		writeReply(w, rj.status, Fail(cb.Command, rj.msg))
		rc.observe(cb.Command, ResultRejected, rj.reason, start)
	}

	if r.Method != http.MethodPost {
		reject(rejection{http.StatusMethodNotAllowed, ReasonMethod, "method " + r.Method + " not allowed: callbacks are POST"})
		return
	}
	if rj := rc.verify(&q, start); rj != nil {
		reject(*rj)
		return
	}
	cb.SdkAppid = rc.SdkAppid
	if q.RequestTime != "" { // a failed parse allocates its error
		if ts, err := strconv.ParseInt(q.RequestTime, 10, 64); err == nil && ts > 0 {
			cb.RequestTime = time.Unix(ts, 0)
		}
	}
	if len(rc.Token) == 0 && rc.Unsigned != nil {
		rc.Unsigned()
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // don't let one large body pin memory in the pool
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	max, maxPairs := rc.limits()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			reject(rejection{http.StatusRequestEntityTooLarge, ReasonTooLarge, fmt.Sprintf("body larger than %d bytes", max)})
		} else {
			reject(rejection{http.StatusBadRequest, ReasonRead, "reading body: " + err.Error()})
		}
		return
	}

	if cb.Command == "" {
		// Tencent always sends the command in the query; tolerate a proxy
		// that dropped it by taking the body's.
		var head struct{ CallbackCommand string }
		if err := json.Unmarshal(buf.Bytes(), &head); err != nil {
			reject(rejection{http.StatusBadRequest, ReasonMalformed, "malformed JSON: " + err.Error()})
			return
		}
		cb.Command = head.CallbackCommand
	}
	if !imevent.IsCommand(cb.Command) {
		// A shared callback URL also gets message, group and profile
		// callbacks; failing them would make Tencent report errors (or
		// block messages) for events that are none of our business.
		log.LogAttrs(r.Context(), slog.LevelDebug, "callback ignored", slog.String("callback_id", cb.ID), slog.String("command", cb.Command))
		writeReply(w, http.StatusOK, OK())
		rc.observe(cb.Command, ResultIgnored, "", start)
		return
	}
	if err := DecodeMax(buf.Bytes(), cb, maxPairs); err != nil {
		de := &DecodeError{Reason: ReasonMalformed, Msg: err.Error()}
		errors.As(err, &de)
		reject(rejection{http.StatusBadRequest, de.Reason, de.Msg})
		return
	}

	reply, err := rc.Handler.Handle(r.Context(), cb)
	if err != nil && r.Context().Err() != nil {
		// The caller hung up before the work was stored: nothing was kept,
		// and nobody is there to read a reply. Not a server fault.
		log.LogAttrs(r.Context(), slog.LevelWarn, "callback abandoned by the client before its jobs were stored; nothing kept",
			slog.String("callback_id", cb.ID), slog.String("command", cb.Command), slog.String("err", err.Error()))
		rc.observe(cb.Command, ResultFailed, "", start)
		return
	}
	if err != nil {
		log.LogAttrs(r.Context(), slog.LevelError, "callback failed", slog.String("callback_id", cb.ID),
			slog.String("command", cb.Command), slog.Int("events", len(cb.Events)), slog.String("err", err.Error()))
		// The caller learns that it failed and the id to find it by in
		// the log, not store paths or NATS error codes.
		writeReply(w, http.StatusServiceUnavailable, Fail(cb.Command, FailInfo(cb.ID)))
		rc.observe(cb.Command, ResultFailed, "", start)
		return
	}
	writeReply(w, http.StatusOK, reply)
	rc.observe(cb.Command, ResultOK, "", start)
}

// FailInfo is the ErrorInfo of a callback whose work could not be kept:
// generic, with the id the log line of the failure carries.
func FailInfo(callbackID string) string {
	return "internal error: the callback was not kept, retry it (callback_id " + callbackID + " in the log)"
}

// logRejection writes the "callback rejected" line, within RejectLogs.
func (rc *Receiver) logRejection(r *http.Request, cb *Callback, rj rejection) {
	if rc.RejectLogs != nil && !rc.RejectLogs.Allow() {
		rc.suppressed.Add(1)
		if rc.Suppressed != nil {
			rc.Suppressed()
		}
		return
	}
	attrs := []slog.Attr{slog.String("callback_id", cb.ID),
		slog.String("reason", rj.reason), slog.String("err", truncate(rj.msg, 200)),
		slog.String("command", truncate(cb.Command, 64)), slog.String("remote", r.RemoteAddr)}
	if n := rc.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed_before", n))
	}
	rc.logger().LogAttrs(r.Context(), slog.LevelWarn, "callback rejected", attrs...)
}

// verify checks SdkAppid and, with a token configured, Sign and
// RequestTime. It looks only at the query, so a forged request is turned
// away before its body is read.
func (rc *Receiver) verify(q *callbackQuery, now time.Time) *rejection {
	if len(rc.Token) > 0 {
		sign, rt := q.Sign, q.RequestTime
		if sign == "" || rt == "" {
			return &rejection{http.StatusUnauthorized, ReasonSignMissing, "Sign and RequestTime are required (callback authentication is on)"}
		}
		if !ValidSign(rc.Token, rt, sign) {
			return &rejection{http.StatusUnauthorized, ReasonSignBad, "Sign does not match"}
		}
		ts, err := strconv.ParseInt(rt, 10, 64)
		if err != nil {
			return &rejection{http.StatusUnauthorized, ReasonSignBad, "RequestTime is not a Unix time"}
		}
		skew := rc.MaxSkew
		if skew <= 0 {
			skew = 60 * time.Second
		}
		d := now.Sub(time.Unix(ts, 0))
		if d > skew {
			return &rejection{http.StatusUnauthorized, ReasonSignStale, fmt.Sprintf("RequestTime is %s old, more than %s", d.Truncate(time.Second), skew)}
		}
		if -d > skew {
			return &rejection{http.StatusUnauthorized, ReasonSignFuture, fmt.Sprintf("RequestTime is %s in the future, more than %s", (-d).Truncate(time.Second), skew)}
		}
	}
	appid := q.SdkAppid
	if appid == "" {
		return &rejection{http.StatusForbidden, ReasonSdkAppid, "SdkAppid is missing"}
	}
	if appid != rc.ownAppid() {
		return &rejection{http.StatusForbidden, ReasonSdkAppid, fmt.Sprintf("SdkAppid %q is not this app's", truncate(appid, 32))}
	}
	return nil
}

// ValidSign reports whether sign is hex(sha256(token + requestTime)),
// in either hex case, comparing in constant time.
func ValidSign(token []byte, requestTime, sign string) bool {
	h := sha256.New()
	h.Write(token)
	h.Write([]byte(requestTime))
	var want [sha256.Size * 2]byte
	hex.Encode(want[:], h.Sum(nil))
	got := []byte(strings.ToLower(sign))
	return subtle.ConstantTimeCompare(got, want[:]) == 1
}

// Sign computes the Sign Tencent sends for token and requestTime.
func Sign(token []byte, requestTime string) string {
	sum := sha256.Sum256(append(append([]byte{}, token...), requestTime...))
	return hex.EncodeToString(sum[:])
}

func (rc *Receiver) observe(command, result, reason string, start time.Time) {
	if rc.Observe == nil {
		return
	}
	if !imevent.IsCommand(command) {
		command = "other" // the query is attacker-controlled: never an unbounded label
	}
	took := time.Since(start) // reads only the monotonic clock: half of what Now costs
	if rc.Now != nil {
		took = rc.Now().Sub(start)
	}
	rc.Observe(command, result, reason, took)
}

// The plain OK reply, answered to nearly every callback, is encoded once.
var (
	okReplyBody = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	jsonType    = []string{"application/json; charset=utf-8"}
)

func writeReply(w http.ResponseWriter, status int, reply Reply) {
	h := w.Header()
	// Shared, never-modified value slices: net/http only reads them, and
	// Set would allocate one per header per reply.
	h["Content-Type"] = jsonType
	if status == http.StatusOK && reply.ActionStatus == "OK" && reply.ErrorCode == 0 && reply.ErrorInfo == "" && reply.ResultItem == nil {
		// No Content-Length: net/http sends it for a reply written whole
		// before the handler returns, and a header of fewer entries costs
		// less to fill and to copy (it copies the handler's header once).
		w.WriteHeader(status)
		_, _ = w.Write(okReplyBody)
		return
	}
	b, err := json.Marshal(reply)
	if err != nil { // cannot happen for this type; keep Tencent's contract anyway
		b = []byte(`{"ActionStatus":"FAIL","ErrorCode":1,"ErrorInfo":"internal error"}`)
		status = http.StatusInternalServerError
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// limits are the body limit and the pair list bound: the body limit
// raised to hold maxPairs pairs (PairBytes each).
func (rc *Receiver) limits() (maxBody int64, maxPairs int) {
	maxBody, maxPairs = rc.MaxBody, rc.MaxPairs
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if maxPairs <= 0 {
		maxPairs = DefaultMaxPairs
	}
	return max(maxBody, int64(maxPairs)*PairBytes), maxPairs
}

// NewID returns a 128-bit random id: unique across restarts and replicas,
// which job ids derived from it rely on.
func NewID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// LogHandler is the Handler used until rules are configured: it logs each
// event at debug level and allows every Prev target.
func LogHandler(logger *slog.Logger) Handler {
	return HandlerFunc(func(ctx context.Context, cb *Callback) (Reply, error) {
		for i := range cb.Events {
			e := &cb.Events[i]
			logger.LogAttrs(ctx, slog.LevelDebug, "event",
				slog.String("callback_id", cb.ID), slog.String("command", e.CallbackCommand),
				slog.String("from", e.From_Account), slog.String("to", e.To_Account),
				slog.Int("pair_index", e.PairIndex), slog.Int("pair_count", e.PairCount))
		}
		return AllowAll(cb), nil
	})
}
