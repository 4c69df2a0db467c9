package im

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"golang.org/x/time/rate"
)

// The REST APIs friendflow calls besides SendPath, one action kind each.
const (
	BatchSendPath    = "openim/batchsendmsg"
	AddToGroupPath   = "group_open_http_svc/add_group_member"
	FriendUpdatePath = "sns/friend_update"
)

// APIs lists the paths of the REST APIs friendflow calls: the names
// Config.APIRates (and --im-rate-api) accept.
var APIs = []string{SendPath, BatchSendPath, AddToGroupPath, FriendUpdatePath, FriendAddPath, FriendDeletePath, BlacklistAddPath, PortraitGetPath}

// budgets are the rate limits of one Client: a token bucket per API, made
// at NewClient for every API friendflow calls (so Call never locks to find
// one), and batchsendmsg's recipients per minute.
type budgets struct {
	perAPI     map[string]*rate.Limiter
	other      *rate.Limiter // an API outside APIs (Call is public): one shared bucket at the default rate
	recipients *rate.Limiter
}

func newBudgets(cfg Config) (budgets, error) {
	def := cfg.Rate
	if def <= 0 || math.IsNaN(def) {
		def = DefaultRate
	}
	b := budgets{perAPI: make(map[string]*rate.Limiter, len(APIs)), other: newLimiter(def)}
	for api, r := range cfg.APIRates {
		p := CanonicalAPI(api)
		if !slices.Contains(APIs, p) {
			return budgets{}, fmt.Errorf("im: rate for unknown API %q (known: %s)", api, strings.Join(APIs, ", "))
		}
		if r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return budgets{}, fmt.Errorf("im: rate of %s must be a positive number, got %v", p, r)
		}
		b.perAPI[p] = newLimiter(r)
	}
	for _, p := range APIs {
		if b.perAPI[p] == nil {
			b.perAPI[p] = newLimiter(def)
		}
	}
	per := cfg.BatchRecipients
	if per <= 0 {
		per = DefaultBatchRecipients
	}
	var err error
	if b.recipients, err = recipientLimiter(per); err != nil {
		return budgets{}, err
	}
	return b, nil
}

// CanonicalAPI is an API path as APIs spells it: without a leading "/" or
// "v4/".
func CanonicalAPI(api string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(api), "/"), "v4/")
}

func newLimiter(r float64) *rate.Limiter { return rate.NewLimiter(rate.Limit(r), burst(r)) }

// recipientLimiter allows perMinute recipients in any minute, with one
// request's worth (MaxBatchRecipients) as its burst: a bucket of b tokens
// filling at r per second lets through at most b + 60·r in any 60 s, so r
// is what is left of the minute's budget after a full burst.
func recipientLimiter(perMinute int) (*rate.Limiter, error) {
	if perMinute <= MaxBatchRecipients {
		return nil, fmt.Errorf("im: batchsendmsg recipients per minute must be more than %d (one request), got %d", MaxBatchRecipients, perMinute)
	}
	r := float64(perMinute-MaxBatchRecipients) / 60
	return rate.NewLimiter(rate.Limit(r), MaxBatchRecipients), nil
}

// of returns the request budget of the API at svc ("openim/sendmsg").
func (b budgets) of(svc string) *rate.Limiter {
	if l := b.perAPI[svc]; l != nil {
		return l
	}
	return b.other
}

// Budget returns the token bucket that requests to api wait for, for
// tests and metrics: api is a path as APIs spells it.
func (c *Client) Budget(api string) *rate.Limiter { return c.budgets.of(CanonicalAPI(api)) }

// RecipientBudget returns batchsendmsg's recipients-per-minute bucket.
func (c *Client) RecipientBudget() *rate.Limiter { return c.budgets.recipients }

// waitRecipients takes n recipients from batchsendmsg's minute budget.
func (c *Client) waitRecipients(ctx context.Context, n int) error {
	if err := c.budgets.recipients.WaitN(ctx, n); err != nil {
		return fmt.Errorf("im %s: waiting for the recipients-per-minute budget: %w", BatchSendPath, err)
	}
	return nil
}

// RateState is one REST API's budget as it stands: its limit in requests
// per second, and the requests it may make at once right now (0 or less:
// calls are waiting).
type RateState struct {
	API       string
	Limit     float64
	Available float64
}

// RateStates returns the budget of each API in APIs, in that order.
func (c *Client) RateStates() []RateState {
	out := make([]RateState, len(APIs))
	for i, api := range APIs {
		l := c.budgets.of(api)
		out[i] = RateState{API: api, Limit: float64(l.Limit()), Available: l.Tokens()}
	}
	return out
}
