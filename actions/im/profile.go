package im

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// PortraitGetPath reads user profiles for profile() in templates
// (https://www.tencentcloud.com/document/product/1047/34917).
const PortraitGetPath = "profile/portrait_get"

// MaxPortraitAccounts is how many accounts one portrait_get reads: the
// page's field table says the list "must not exceed 100".
const MaxPortraitAccounts = 100

// Defaults of ProfilesConfig.
const (
	DefaultProfileTTL       = 10 * time.Minute
	DefaultProfileCacheSize = 100000
	// DefaultProfileWindow is how long a batch of fewer than
	// MaxPortraitAccounts waits for another account to join it, and
	// DefaultProfileMaxWait how long its first account waits at most: while
	// accounts keep coming, batches leave full.
	DefaultProfileWindow  = 20 * time.Millisecond
	DefaultProfileMaxWait = 200 * time.Millisecond
	// profileFetchTimeout bounds one batch: the wait for the rate budget
	// and the request (the client's own timeout bounds the request).
	profileFetchTimeout = 30 * time.Second
)

// The standard tags profile() gives (Tencent's standard profile fields,
// https://www.tencentcloud.com/document/product/1047/33520), and the prefix
// of custom ones.
const (
	tagNick          = "Tag_Profile_IM_Nick"
	tagImage         = "Tag_Profile_IM_Image"
	tagGender        = "Tag_Profile_IM_Gender"
	tagLanguage      = "Tag_Profile_IM_Language"
	tagLocation      = "Tag_Profile_IM_Location"
	tagSelfSignature = "Tag_Profile_IM_SelfSignature"
	// ProfileCustomPrefix starts a custom profile field's tag.
	ProfileCustomPrefix = "Tag_Profile_Custom_"
)

var standardProfileTags = []string{tagNick, tagImage, tagGender, tagLanguage, tagLocation, tagSelfSignature}

// ProfilesConfig configures Profiles.
type ProfilesConfig struct {
	TTL      time.Duration // how long a profile is kept [DefaultProfileTTL]
	Size     int           // profiles kept at most [DefaultProfileCacheSize]
	Window   time.Duration // how long a batch waits for one more account [DefaultProfileWindow]
	MaxWait  time.Duration // how long a batch waits to fill at most [DefaultProfileMaxWait]
	MaxBatch int           // accounts per request, at most MaxPortraitAccounts [MaxPortraitAccounts]
	// Observe, when set, is told of each account a job found cached (hit)
	// and of each account read from IM because it was not (miss). It must
	// not block.
	Observe func(hit bool)
	Now     func() time.Time // for the TTL; nil: time.Now
	Logger  *slog.Logger     // nil: slog.Default()
}

// Profiles reads IM profiles with portrait_get for jobs when they run: the
// accounts that concurrently running jobs want are batched into one
// request (up to MaxBatch, or what arrived until no account came for
// Window, within MaxWait), and the answers
// kept in a bounded cache (Size profiles, least recently used first out,
// each for TTL), so that a burst of welcomes to the same people costs one
// request per hundred of them. It implements actions.ProfileSource.
//
// An account without a profile (unknown to IM, or a per-account permanent
// code) gives a zero Profile, cached like any other. Request-level
// permanent errors (no permission on a tag, a custom tag not configured)
// are permanent errors of the jobs that wanted them: dead letters, to be
// replayed once the configuration is fixed. Transient ones are transient.
type Profiles struct {
	c   *Client
	cfg ProfilesConfig
	log *slog.Logger

	mu       sync.Mutex
	cache    profileCache
	pending  map[string]*profileBatch // by custom-field set: the batch still filling
	inflight map[string]*profileCall  // by cache key: asked for, not answered yet
	latency  time.Duration            // of portrait_get, smoothed: Prefetch's estimate
}

// NewProfiles returns the profile reader of c.
func NewProfiles(c *Client, cfg ProfilesConfig) *Profiles {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultProfileTTL
	}
	if cfg.Size <= 0 {
		cfg.Size = DefaultProfileCacheSize
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultProfileWindow
	}
	if cfg.MaxWait < cfg.Window {
		cfg.MaxWait = max(cfg.Window, DefaultProfileMaxWait)
	}
	if cfg.MaxBatch <= 0 || cfg.MaxBatch > MaxPortraitAccounts {
		cfg.MaxBatch = MaxPortraitAccounts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Profiles{c: c, cfg: cfg, log: log.With("component", "profiles"),
		cache:    profileCache{size: cfg.Size, ll: list.New(), m: make(map[string]*list.Element)},
		pending:  make(map[string]*profileBatch),
		inflight: make(map[string]*profileCall)}
}

// profileCall is one account's read, shared by every job that waits for it.
type profileCall struct {
	done chan struct{}
	prof actions.Profile
	err  error
}

// profileBatch is the accounts of one request, with the custom fields its
// TagList names.
type profileBatch struct {
	key      string // the custom fields, joined
	custom   []string
	accounts []string
	calls    []*profileCall
	timer    *time.Timer
	first    time.Time // when the first account joined
}

// customSet is the cache and batch key of a list of custom fields.
func customSet(custom []string) string {
	if len(custom) == 0 {
		return ""
	}
	if len(custom) > 1 && !slices.IsSorted(custom) {
		custom = slices.Sorted(slices.Values(custom))
	}
	return strings.Join(custom, ",")
}

// Profiles implements actions.ProfileSource.
func (p *Profiles) Profiles(ctx context.Context, accounts, custom []string) (map[string]actions.Profile, error) {
	set := customSet(custom)
	out := make(map[string]actions.Profile, len(accounts))
	type wait struct {
		account string
		call    *profileCall
	}
	var waits []wait
	p.mu.Lock()
	now := p.cfg.Now()
	for _, a := range accounts {
		if _, done := out[a]; done {
			continue
		}
		key := a + "\x00" + set
		if prof, ok := p.cache.get(key, now); ok {
			out[a] = prof
			p.observe(true)
			continue
		}
		call := p.inflight[key]
		if call == nil {
			call = p.enqueueLocked(a, key, set, custom)
		}
		waits = append(waits, wait{a, call})
	}
	p.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w.call.done:
		case <-ctx.Done():
			return nil, actions.Transient(fmt.Errorf("waiting for the profile of %s: %w", w.account, ctx.Err()), 0)
		}
		if w.call.err != nil {
			return nil, w.call.err
		}
		out[w.account] = w.call.prof
	}
	return out, nil
}

// Prefetch implements actions.ProfileSource: it asks for the accounts
// neither cached nor asked for yet, without waiting, and returns 0 when
// all are cached, else the batch window and a request's recent latency.
func (p *Profiles) Prefetch(accounts, custom []string) time.Duration {
	set := customSet(custom)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	missing := false
	for _, a := range accounts {
		key := a + "\x00" + set
		if p.cache.has(key, now) {
			continue
		}
		missing = true
		if p.inflight[key] == nil {
			p.enqueueLocked(a, key, set, custom)
		}
	}
	if !missing {
		return 0
	}
	return p.cfg.Window + p.latency
}

func (p *Profiles) observe(hit bool) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(hit)
	}
}

// enqueueLocked adds account to the filling batch of its custom set,
// sending the batch when it is full; p.mu is held.
func (p *Profiles) enqueueLocked(account, key, set string, custom []string) *profileCall {
	b := p.pending[set]
	if b == nil {
		b = &profileBatch{key: set, custom: slices.Clone(custom), first: time.Now()}
		p.pending[set] = b
		b.timer = time.AfterFunc(p.cfg.Window, func() { p.flush(b) })
	} else {
		// Another Window from now, within MaxWait of the first account.
		b.timer.Reset(max(0, min(p.cfg.Window, p.cfg.MaxWait-time.Since(b.first))))
	}
	p.observe(false)
	call := &profileCall{done: make(chan struct{})}
	p.inflight[key] = call
	b.accounts = append(b.accounts, account)
	b.calls = append(b.calls, call)
	if len(b.accounts) >= p.cfg.MaxBatch {
		b.timer.Stop()
		delete(p.pending, set)
		go p.fetch(b)
	}
	return call
}

// flush sends b when its window ends, unless it was sent full before.
func (p *Profiles) flush(b *profileBatch) {
	p.mu.Lock()
	if p.pending[b.key] != b {
		p.mu.Unlock()
		return
	}
	delete(p.pending, b.key)
	p.mu.Unlock()
	p.fetch(b)
}

// fetch reads b's accounts and answers their calls.
func (p *Profiles) fetch(b *profileBatch) {
	ctx, cancel := context.WithTimeout(context.Background(), profileFetchTimeout)
	defer cancel()
	t0 := time.Now()
	profs, errs, err := p.portraitGet(ctx, b.accounts, b.custom)
	took := time.Since(t0)
	if err != nil {
		p.log.Warn("portrait_get failed", "accounts", len(b.accounts), "err", err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency += (min(took, time.Second) - p.latency) / 4
	exp := p.cfg.Now().Add(p.cfg.TTL)
	for i, a := range b.accounts {
		call := b.calls[i]
		switch {
		case err != nil:
			call.err = err
		case errs[a] != nil:
			call.err = errs[a]
		default:
			call.prof = profs[a].Frozen()
			p.cache.put(a+"\x00"+b.key, call.prof, exp)
		}
		delete(p.inflight, a+"\x00"+b.key)
		close(call.done)
	}
}

// portraitRequest is portrait_get's body.
type portraitRequest struct {
	To      []string `json:"To_Account"`
	TagList []string `json:"TagList"`
}

// portraitReply is the part of portrait_get's answer friendflow reads.
type portraitReply struct {
	UserProfileItem []struct {
		To          string `json:"To_Account"`
		ProfileItem []struct {
			Tag   string          `json:"Tag"`
			Value json.RawMessage `json:"Value"`
		} `json:"ProfileItem"`
		ResultCode int    `json:"ResultCode"`
		ResultInfo string `json:"ResultInfo"`
	} `json:"UserProfileItem"`
}

// portraitGet reads accounts (at most MaxPortraitAccounts) in one request.
// errs holds the accounts that failed transiently on their own; an account
// absent from profs has no profile. Whether an account IM does not know
// fails the whole request (40003) or only its own entry is not documented:
// a whole-request 40003 is narrowed by halves down to the unknown
// accounts, which then have no profile.
func (p *Profiles) portraitGet(ctx context.Context, accounts, custom []string) (profs map[string]actions.Profile, errs map[string]error, err error) {
	tags := standardProfileTags
	if len(custom) > 0 {
		tags = slices.Clone(standardProfileTags)
		for _, k := range custom {
			tags = append(tags, ProfileCustomPrefix+k)
		}
	}
	var reply portraitReply
	err = p.c.Call(ctx, PortraitGetPath, portraitRequest{To: accounts, TagList: tags}, &reply)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == 40003 {
		if len(accounts) == 1 {
			return nil, nil, nil
		}
		half := len(accounts) / 2
		profs, errs, err = p.portraitGet(ctx, accounts[:half], custom)
		if err != nil {
			return nil, nil, err
		}
		rp, re, err := p.portraitGet(ctx, accounts[half:], custom)
		if err != nil {
			return nil, nil, err
		}
		return merged(profs, rp), merged(errs, re), nil
	}
	if err != nil {
		return nil, nil, err
	}
	profs = make(map[string]actions.Profile, len(reply.UserProfileItem))
	for _, it := range reply.UserProfileItem {
		if it.ResultCode != 0 {
			switch c, _ := Lookup(it.ResultCode); c.Class {
			case ClassTransient, ClassRateLimited:
				if errs == nil {
					errs = make(map[string]error)
				}
				errs[it.To] = actions.Transient(fmt.Errorf("im %s: %s: error %d: %s", PortraitGetPath, it.To, it.ResultCode, it.ResultInfo), c.Wait)
			default:
				p.log.Debug("no profile for an account", "account", it.To, "code", it.ResultCode, "info", it.ResultInfo)
			}
			continue
		}
		var prof actions.Profile
		for _, item := range it.ProfileItem {
			setProfileTag(&prof, item.Tag, item.Value)
		}
		profs[it.To] = prof
	}
	return profs, errs, nil
}

func merged[V any](a, b map[string]V) map[string]V {
	if a == nil {
		return b
	}
	for k, v := range b {
		a[k] = v
	}
	return a
}

// setProfileTag sets the field of tag from its raw JSON value: a string,
// or a number (uint32 tags such as Tag_Profile_IM_Language).
func setProfileTag(p *actions.Profile, tag string, raw json.RawMessage) {
	text := rawText(raw)
	switch tag {
	case tagNick:
		p.Nick = text
	case tagImage:
		p.FaceUrl = text
	case tagGender:
		p.Gender = text
	case tagLocation:
		p.Location = text
	case tagSelfSignature:
		p.SelfSignature = text
	case tagLanguage:
		p.Language, _ = strconv.Atoi(text)
	default:
		if k, ok := strings.CutPrefix(tag, ProfileCustomPrefix); ok && text != "" {
			if p.Custom == nil {
				p.Custom = make(map[string]string)
			}
			p.Custom[k] = text
		}
	}
}

// rawText is a JSON string's text, or a number's digits.
func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// profileCache is a least-recently-used cache of profiles with a TTL. Its
// memory is bounded by size: a profile's strings are capped by IM (500
// bytes each), and only the custom fields rules name are read.
type profileCache struct {
	size int
	ll   *list.List // front: most recently used
	m    map[string]*list.Element
}

type profileEntry struct {
	key  string
	prof actions.Profile
	exp  time.Time
}

func (c *profileCache) get(key string, now time.Time) (actions.Profile, bool) {
	el := c.m[key]
	if el == nil {
		return actions.Profile{}, false
	}
	e := el.Value.(*profileEntry)
	if !now.Before(e.exp) {
		c.ll.Remove(el)
		delete(c.m, key)
		return actions.Profile{}, false
	}
	c.ll.MoveToFront(el)
	return e.prof, true
}

func (c *profileCache) has(key string, now time.Time) bool {
	el := c.m[key]
	return el != nil && now.Before(el.Value.(*profileEntry).exp)
}

func (c *profileCache) put(key string, prof actions.Profile, exp time.Time) {
	if el := c.m[key]; el != nil {
		e := el.Value.(*profileEntry)
		e.prof, e.exp = prof, exp
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&profileEntry{key: key, prof: prof, exp: exp})
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*profileEntry).key)
	}
}

// Len is the number of profiles cached, for tests and metrics.
func (p *Profiles) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cache.ll.Len()
}
