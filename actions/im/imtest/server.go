// Package imtest is a fake Tencent IM REST server for tests. It checks
// every request the way Tencent's REST API documentation describes it
// (https://www.tencentcloud.com/document/product/1047/34620) — method,
// path, query parameters, the admin UserSig (decoded and its HMAC
// recomputed), a fresh random per request, the JSON field names, types and
// limits of openim/sendmsg, openim/batchsendmsg,
// group_open_http_svc/add_group_member, sns/friend_update, sns/friend_add,
// sns/friend_delete, sns/black_list_add and profile/portrait_get — and reports
// each deviation as a test error. It answers like IM does (HTTP 200 with
// an ActionStatus envelope; SomeError with an ErrorList, FAIL 90012
// without one when every recipient of a batch failed, 10019 for an
// unknown group member, per-member and per-friend results), applies the
// 120-second MsgSeq/MsgRandom dedup of sendmsg (and none to batchsendmsg,
// whose pages document none), keeps groups, friend fields and unknown
// accounts, records what it received, and can be scripted to be slow, to
// fail with HTTP errors, or to return IM error codes (10006, ...), for a
// whole request or per account.
package imtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
)

// Options configure a Server. Zero fields take the defaults of the same
// name, which are also what a test's im.Config should use.
type Options struct {
	SDKAppID  int64  // DefaultSDKAppID
	Admin     string // DefaultAdmin
	SecretKey string // DefaultSecretKey
	// Clock is the server's time, for UserSig expiry and the dedup window;
	// nil means time.Now.
	Clock func() time.Time
	// OnViolation receives each protocol violation; nil means t.Errorf.
	OnViolation func(msg string)
}

// Defaults for Options, and for the client configured against the server.
const (
	DefaultSDKAppID  = 1400000000
	DefaultAdmin     = "administrator"
	DefaultSecretKey = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
)

// DedupWindow is how long IM treats a repeated sendmsg as the same message.
const DedupWindow = 120 * time.Second

// MaxContent is IM's message size limit in bytes (error 93000 above it).
const MaxContent = 8000

// Reply scripts the answer to one request.
type Reply struct {
	// Delay holds the answer back. The request is still processed (a
	// message delivered) if the client gives up meanwhile, like IM would.
	Delay time.Duration
	// HTTPStatus, when set to anything but 200, answers with that status
	// and a plain-text body instead of an envelope, like a gateway does.
	HTTPStatus int
	RetryAfter string // Retry-After header sent with HTTPStatus
	// ErrorCode, when not 0, answers ActionStatus FAIL with this code and
	// ErrorInfo, and the request has no effect.
	ErrorCode int
	ErrorInfo string
	// Accounts scripts per-account results of the batch APIs, by
	// account: add_group_member's Result for that member (0 failed, 1
	// added, 2 already a member, 3 awaiting confirmation), friend_update's
	// ResultCode for that friend, batchsendmsg's ErrorList code for that
	// recipient, friend_add's, friend_delete's and black_list_add's
	// ResultCode for that account. A scripted account has no effect but the
	// result.
	Accounts map[string]int
}

// Request is one received request, valid or not.
type Request struct {
	Method     string
	Path       string // "/v4/openim/sendmsg"
	Query      map[string][]string
	Identifier string
	UserSig    string
	Random     uint32
	Body       json.RawMessage
	Received   time.Time
	ErrorCode  int // what the server answered (0: OK)
	HTTPStatus int
}

// Message is a C2C message accepted by openim/sendmsg.
type Message struct {
	From                  string // From_Account; "" when absent (sent as the admin)
	To                    string
	MsgSeq                uint32
	MsgRandom             uint32
	SyncOtherMachine      int    // 0 when absent
	MsgLifeTime           *int64 // nil when absent
	ForbidCallbackControl []string
	SendMsgControl        []string
	Text                  string  // the TIMTextElem texts, concatenated
	Custom                *Custom // the TIMCustomElem, if any
	CloudCustomData       string
	OfflinePush           *OfflinePush
	Body                  json.RawMessage // the request body as received
	MsgKey                string          // the key the server answered with
	Batch                 bool            // sent by openim/batchsendmsg, to To among others
}

// Custom is a TIMCustomElem's content.
type Custom struct{ Data, Desc, Ext, Sound string }

// OfflinePush is OfflinePushInfo (the fields friendflow sends).
type OfflinePush struct {
	PushFlag            int
	Title, Desc, Ext    string
	HasAndroid, HasApns bool
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	URL string // base URL, for im.Config.Endpoint

	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	script     []Reply
	scriptFor  map[string][]Reply // by request path
	requests   []Request
	messages   []Message
	duplicates int
	seen       map[string]dedupEntry
	groups     map[string]*group
	friends    map[string]map[string]map[string]any // from → to → tag → value
	updates    []FriendUpdate
	adds       []FriendAdd
	blocked    map[string]map[string]bool // from → to
	recent     []uint32                   // the last randoms, to catch one reused
	unknown    map[string]bool
	changed    chan struct{}
	// portrait_get's profiles (account → tag → value), the app's custom
	// profile keys, and how an unknown account is answered.
	profiles       map[string]map[string]any
	customTags     []string
	unknownPerUser bool
}

type dedupEntry struct {
	at  time.Time
	key string
}

// NewServer starts a Server on a loopback port; it is closed when the test
// ends.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.SDKAppID == 0 {
		opts.SDKAppID = DefaultSDKAppID
	}
	if opts.Admin == "" {
		opts.Admin = DefaultAdmin
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.OnViolation == nil {
		opts.OnViolation = func(msg string) { t.Errorf("imtest: protocol violation: %s", msg) }
	}
	s := &Server{opts: opts, seen: make(map[string]dedupEntry), changed: make(chan struct{}),
		groups: make(map[string]*group), friends: make(map[string]map[string]map[string]any),
		blocked: make(map[string]map[string]bool)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Config returns an im.Config for a client of this server.
func (s *Server) Config() im.Config {
	return im.Config{
		Endpoint:  s.URL,
		SDKAppID:  s.opts.SDKAppID,
		Admin:     s.opts.Admin,
		SecretKey: s.opts.SecretKey,
		Rate:      1e6,
		// Tests send thousands of recipients at once; the default
		// 12 000 per minute would make them wait.
		BatchRecipients: 1e9,
	}
}

// Unknown makes accounts unknown to IM (never imported): batchsendmsg
// reports them with 70107, or fails as a whole with 90012 when every
// recipient is unknown; add_group_member fails as a whole with 10019.
func (s *Server) Unknown(accounts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unknown == nil {
		s.unknown = map[string]bool{}
	}
	for _, a := range accounts {
		s.unknown[a] = true
	}
}

func (s *Server) isUnknown(a string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unknown[a]
}

// Script queues replies; each request consumes the next one, and requests
// beyond the script are answered normally.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// ScriptFor queues replies for the requests to one API ("sns/friend_update"),
// ahead of Script's: for tests whose requests to several APIs run
// concurrently, in no set order.
func (s *Server) ScriptFor(api string, replies ...Reply) {
	path := "/v4/" + strings.TrimPrefix(strings.TrimPrefix(api, "/"), "v4/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scriptFor == nil {
		s.scriptFor = make(map[string][]Reply)
	}
	s.scriptFor[path] = append(s.scriptFor[path], replies...)
}

// Requests returns every request answered so far, in the order of the
// answers.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Messages returns the messages delivered so far: accepted sendmsg
// requests, each once however often it was repeated inside the dedup
// window.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// Duplicates counts sendmsg requests that the dedup window absorbed.
func (s *Server) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

// WaitMessages waits until at least n messages were delivered and returns
// them, or returns ctx's error with what was delivered so far.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, ch := slices.Clone(s.messages), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("imtest: %d of %d messages: %w", len(msgs), n, ctx.Err())
		}
	}
}

// WaitRequests waits until at least n requests were answered and returns
// them, or returns ctx's error with those answered so far. A request is
// recorded when its answer is ready, so a slow one that its client gave up
// on may be recorded after later ones.
func (s *Server) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	for {
		s.mu.Lock()
		reqs, ch := slices.Clone(s.requests), s.changed
		s.mu.Unlock()
		if len(reqs) >= n {
			return reqs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return reqs, fmt.Errorf("imtest: %d of %d requests: %w", len(reqs), n, ctx.Err())
		}
	}
}

// notify wakes the waiters; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		Query:    r.URL.Query(),
		Body:     body,
		Received: s.opts.Clock(),
	}
	req.Identifier = r.URL.Query().Get("identifier")
	req.UserSig = r.URL.Query().Get("usersig")

	s.mu.Lock()
	var reply Reply
	if queued := s.scriptFor[req.Path]; len(queued) > 0 {
		reply = queued[0]
		s.scriptFor[req.Path] = queued[1:]
	} else if len(s.script) > 0 {
		reply = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()

	code, info := s.check(r, &req)
	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	switch {
	case code != 0:
	case reply.HTTPStatus != 0 && reply.HTTPStatus != http.StatusOK:
		req.HTTPStatus = reply.HTTPStatus
		s.record(req)
		if reply.RetryAfter != "" {
			w.Header().Set("Retry-After", reply.RetryAfter)
		}
		http.Error(w, "<html>"+http.StatusText(reply.HTTPStatus)+"</html>", reply.HTTPStatus)
		return
	case reply.ErrorCode != 0:
		code, info = reply.ErrorCode, reply.ErrorInfo
	}

	resp := map[string]any{}
	if code == 0 {
		code, info = s.apply(&req, reply, resp)
	}
	req.ErrorCode, req.HTTPStatus = code, http.StatusOK
	s.record(req)

	resp["ErrorCode"] = code
	resp["ErrorInfo"] = info
	if _, set := resp["ActionStatus"]; !set {
		resp["ActionStatus"] = "OK"
		if code != 0 {
			resp["ActionStatus"] = "FAIL"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	s.notify()
}

func (s *Server) violate(format string, a ...any) {
	s.opts.OnViolation(fmt.Sprintf(format, a...))
}

// check validates the request; a non-zero code is IM's answer to it.
// Malformed requests are violations too; semantically wrong ones (an
// expired sig, another app) only get the error code IM would send. The
// steps run in IM's order: the first failing one answers.
func (s *Server) check(r *http.Request, req *Request) (int, string) {
	if code, info := s.checkRequestLine(r); code != 0 {
		return code, info
	}
	q := r.URL.Query()
	if code, info := s.checkQuery(q); code != 0 {
		return code, info
	}
	if code, info := s.checkRandom(q.Get("random"), req); code != 0 {
		return code, info
	}
	if code, info := s.checkCaller(q.Get("sdkappid"), req); code != 0 {
		return code, info
	}
	return s.checkBody(req)
}

func (s *Server) checkRequestLine(r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		s.violate("method %s, want POST", r.Method)
		return 60002, "HTTP method must be POST"
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "v4" || parts[1] == "" || parts[2] == "" {
		s.violate("path %q, want /v4/{service}/{command}", r.URL.Path)
		return 60003, "invalid URL"
	}
	return 0, ""
}

// queryParams are the query parameters of every REST API request.
var queryParams = []string{"sdkappid", "identifier", "usersig", "random", "contenttype"}

func (s *Server) checkQuery(q url.Values) (int, string) {
	for k, v := range q {
		switch {
		case !slices.Contains(queryParams, k):
			s.violate("unexpected query parameter %q", k)
		case len(v) != 1:
			s.violate("query parameter %s given %d times", k, len(v))
			return 60003, "invalid URL"
		}
	}
	for _, k := range queryParams {
		if q.Get(k) == "" {
			s.violate("query parameter %s missing or empty", k)
			if k == "usersig" {
				return 70002, "usersig is empty"
			}
			return 60003, "invalid URL: missing " + k
		}
	}
	if ct := q.Get("contenttype"); ct != "json" {
		s.violate("contenttype=%q, want json", ct)
		return 60003, "contenttype must be json"
	}
	return 0, ""
}

// checkRandom reads the random query parameter, which a client must draw
// afresh for every request.
func (s *Server) checkRandom(random string, req *Request) (int, string) {
	rnd, err := strconv.ParseUint(random, 10, 32)
	if err != nil {
		s.violate("random=%q is not a 32-bit unsigned integer", random)
		return 60003, "invalid random"
	}
	req.Random = uint32(rnd)
	s.mu.Lock()
	reused := slices.Contains(s.recent, req.Random)
	s.recent = append(s.recent, req.Random)
	if len(s.recent) > 16 {
		s.recent = s.recent[1:]
	}
	s.mu.Unlock()
	if reused {
		s.violate("random=%d repeats a recent request's", rnd)
	}
	return 0, ""
}

// checkCaller checks the app, the admin account and its UserSig.
func (s *Server) checkCaller(sdkappid string, req *Request) (int, string) {
	appID, err := strconv.ParseInt(sdkappid, 10, 64)
	if err != nil {
		s.violate("sdkappid=%q is not a number", sdkappid)
		return 60003, "invalid sdkappid"
	}
	if appID != s.opts.SDKAppID {
		return 60006, "SDKAppID is invalid"
	}
	if req.Identifier != s.opts.Admin {
		return 60010, "the request needs an App admin account"
	}
	return s.checkSig(req.UserSig, req.Identifier)
}

func (s *Server) checkBody(req *Request) (int, string) {
	if len(req.Body) == 0 {
		s.violate("empty body")
		return 90001, "JSON body is empty"
	}
	if !json.Valid(req.Body) {
		s.violate("body is not JSON: %.80q", req.Body)
		return 90001, "JSON format error"
	}
	obj, ok := decode(req.Body).(map[string]any)
	if !ok {
		s.violate("body is not a JSON object: %.80q", req.Body)
		return 90001, "JSON format error"
	}
	if req.Path == "/v4/openim/sendmsg" && !s.checkSendMsg(obj) {
		return 90001, "invalid sendmsg request"
	}
	if api, known := apis[req.Path]; known {
		return api.check(s, obj)
	}
	return 0, ""
}

// checkSig verifies the admin UserSig and answers with IM's codes.
func (s *Server) checkSig(sig, identifier string) (int, string) {
	_, err := im.VerifyUserSig(s.opts.SDKAppID, s.opts.SecretKey, identifier, sig, s.opts.Clock())
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, im.ErrSigExpired):
		return 70001, "UserSig expired"
	case errors.Is(err, im.ErrSigMismatch):
		return 70009, "UserSig verification failed: wrong key"
	case errors.Is(err, im.ErrSigIdentifier):
		return 70013, "identifier does not match the UserSig"
	case errors.Is(err, im.ErrSigSDKAppID):
		return 70014, "SDKAppID does not match the UserSig"
	}
	s.violate("usersig does not decode: %v", err)
	return 70003, "UserSig is invalid"
}
