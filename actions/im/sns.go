package im

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/friendflow/friendflow/actions"
)

// The relationship APIs of im.friend_add, im.friend_delete and
// im.blacklist_add.
const (
	FriendAddPath    = "sns/friend_add"
	FriendDeletePath = "sns/friend_delete"
	BlacklistAddPath = "sns/black_list_add"
)

// Per-request caps. friend_delete and black_list_add take at most 1000
// accounts (https://cloud.tencent.com/document/product/269/1644,
// https://cloud.tencent.com/document/product/269/3718). The friend_add
// pages give no cap for AddFriendItem (https://trtc.io/document/34902), so
// friendflow sends at most 100, the smallest cap of the other list APIs.
const (
	MaxFriendAdd    = 100
	MaxFriendDelete = 1000
	MaxBlacklistAdd = 1000
	// MaxSnsJob bounds the accounts of one job of these kinds.
	MaxSnsJob = 1000
	// MaxAddSource bounds the AddSource keyword: friendflow keeps it to
	// 1 to 8 letters, which no reading of the friend_add page refuses.
	MaxAddSource = 8
)

// blacklistAlreadyInfo is the ResultInfo black_list_add gives, with code
// 30001, to an account already on the blocklist (the page's sample,
// https://cloud.tencent.com/document/product/269/3718). 30001 also means
// "request parameter error", so only the two together mean done.
const blacklistAlreadyInfo = "Err_SNS_BlackListAdd_Already_Exist"

// snsKind is one of the relationship kinds: a `from` whose friend list or
// blocklist changes, a list of accounts `to`, one request per chunk, each
// account's ResultCode its outcome.
type snsKind struct {
	c     *Client
	spec  actions.Spec
	path  string
	chunk int
	// body builds a request for chunk; decoded params p.
	body func(p any, from string, chunk []string) any
	// done reports a non-zero per-account result that still means done
	// (logged).
	done func(code int, info string) (string, bool)
	// skip, when set, reports a job that must not run, and why.
	skip func(c *Client, job actions.Job) (string, bool)
	// decode reads the params: the decoded struct, from and to.
	decode func(params map[string]any) (any, string, []string, error)
}

// Spec implements actions.Kind.
func (k *snsKind) Spec() actions.Spec { return k.spec }

// Do implements actions.Kind. Each account's outcome is its own, as for
// im.add_to_group: those IM reports failed transiently are retried alone
// (actions.WithRemaining), those failed for good go to a dead letter of
// their own (actions.WithAbandoned).
func (k *snsKind) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	name := k.spec.Name
	if k.c == nil {
		return notConfigured(name)
	}
	p, from, to, err := k.decode(params)
	if err != nil {
		return actions.Permanent(fmt.Errorf("%s: %w", name, err))
	}
	if k.skip != nil {
		if why, skip := k.skip(k.c, job); skip {
			k.c.log.LogAttrs(ctx, slog.LevelInfo, name+": skipped: "+why,
				slog.String("job_id", job.ID), slog.String("rule", job.Rule), slog.String("from", from))
			return actions.Skip(why)
		}
	}
	to = uniq(to)
	out := newAccounts()
	for i := 0; i < len(to); i += k.chunk {
		chunk := to[i:min(i+k.chunk, len(to))]
		if !k.send(ctx, job, p, from, chunk, out) {
			for _, a := range to[i+len(chunk):] {
				out.again(a, noAnswer, 0)
			}
			break
		}
	}
	out.report(ctx, k.c.log, name, job)
	return out.result(fmt.Sprintf("%s %s: to", name, from), job, "to", len(to))
}

type snsResponse struct {
	ResultItem []struct {
		ToAccount  string `json:"To_Account"`
		ResultCode int    `json:"ResultCode"`
		ResultInfo string `json:"ResultInfo"`
	} `json:"ResultItem"`
}

// send sends one request for chunk and sorts its accounts into out; false
// when the request failed transiently as a whole. A request refused as a
// whole for one account (30003: an account does not exist; the reply
// does not say which) is split in halves down to the accounts at fault,
// as im.add_to_group does: each of these APIs leaves an account as it is
// when sent again (already a friend, already gone, already blocked).
func (k *snsKind) send(ctx context.Context, job actions.Job, p any, from string, chunk []string, out *accounts) bool {
	var resp snsResponse
	err := k.c.Call(ctx, k.path, k.body(p, from, chunk), &resp)
	if err != nil && len(resp.ResultItem) == 0 {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.HTTPStatus == 200 && apiErr.Code != 0 && classOf(apiErr.Code) == ClassSuccess {
			return true // a done code (30539) for the whole request: done for each
		}
		if errors.As(err, &apiErr) && classOf(apiErr.Code) == ClassAccount {
			if len(chunk) == 1 {
				out.fail(chunk[0], apiErr.Code, "")
				return true
			}
			half := len(chunk) / 2
			if !k.send(ctx, job, p, from, chunk[:half], out) {
				for _, a := range chunk[half:] {
					out.again(a, noAnswer, 0)
				}
				return false
			}
			return k.send(ctx, job, p, from, chunk[half:], out)
		}
		out.byError(chunk, err)
		permanent, _ := actions.Classify(err)
		return permanent
	}
	type result struct {
		code int
		info string
	}
	results := make(map[string]result, len(resp.ResultItem))
	for _, r := range resp.ResultItem {
		results[r.ToAccount] = result{r.ResultCode, strings.TrimSpace(r.ResultInfo)}
	}
	for _, a := range chunk {
		r, ok := results[a]
		if !ok {
			out.again(a, noAnswer, 0) // no result for it: tried again
			continue
		}
		if r.code == 0 {
			continue
		}
		if why, done := k.done(r.code, r.info); done {
			k.c.log.LogAttrs(ctx, slog.LevelInfo, k.spec.Name+": "+why, slog.String("job_id", job.ID),
				slog.String("from", from), slog.String("to", a), slog.Int("code", r.code))
			continue
		}
		out.byCode(a, r.code)
	}
	return true
}

// doneByTable: a code the table calls success (30539 pending, 31704
// already gone).
func doneByTable(code int, _ string) (string, bool) {
	c, _ := Lookup(code)
	return c.Meaning, c.Class == ClassSuccess
}

// decodeSns decodes params into T, whose From and To it returns.
func decodeSns[T any, P interface {
	*T
	actions.Declarer
	accounts() (string, []string)
}](spec actions.Spec) func(map[string]any) (any, string, []string, error) {
	return func(params map[string]any) (any, string, []string, error) {
		p, err := actions.Decode[T](spec, params)
		if err != nil {
			return nil, "", nil, err
		}
		from, to := P(&p).accounts()
		return p, from, to, nil
	}
}

func validateSns(p map[string]any) error {
	if s, ok := p["from"].(string); ok && s == "" {
		return &actions.ParamError{Path: "from", Msg: "must not be empty"}
	}
	return nonEmptyItems(p, "to")
}

func declareFromTo(d *actions.Decl, from *string, to *[]string, fromDoc, toDoc string) {
	d.Param(from, actions.Param{Name: "from", Required: true, Example: "${ To_Account }", Doc: fromDoc})
	d.Param(to, actions.Param{Name: "to", Required: true, MinItems: 1, MaxItems: MaxSnsJob,
		Example: "[\"${ From_Account }\"]", Doc: toDoc})
}

// ---- im.friend_add

// FriendAddParams are an im.friend_add job's parameters.
type FriendAddParams struct {
	From    string
	To      []string
	AddType string
	Force   bool
	Remark  string
	Group   string
	Source  string
	Wording string
}

// DeclareParams implements actions.Declarer.
func (p *FriendAddParams) DeclareParams(d *actions.Decl) {
	declareFromTo(d, &p.From, &p.To, "the UserID whose friend list gains the accounts (From_Account), e.g. the official account",
		fmt.Sprintf("the UserIDs to add (AddFriendItem[].To_Account), sent %d per request", MaxFriendAdd))
	d.Param(&p.AddType, actions.Param{Name: "add_type", Default: "both", Enum: []string{"both", "single"}, Example: "single",
		Doc: "both (Add_Type_Both): a friendship both ways; single (Add_Type_Single): only on `from`'s list"})
	d.Param(&p.Force, actions.Param{Name: "force", Default: false, Example: "true",
		Doc: "add without the other side's confirmation (ForceAddFlags 1)"})
	d.Param(&p.Remark, actions.Param{Name: "remark", Default: "", Example: "new user",
		Doc: fmt.Sprintf("the remark `from` keeps about each account (Remark), at most %d bytes", MaxRemark)})
	d.Param(&p.Group, actions.Param{Name: "group", Default: "", Example: "new-users",
		Doc: fmt.Sprintf("the friend group to put each account in (GroupName), at most %d bytes", MaxGroupName)})
	d.Param(&p.Source, actions.Param{Name: "source", Default: "Server", Example: "Welcome",
		Doc: fmt.Sprintf("where the add comes from: sent as AddSource_Type_<source>, 1 to %d letters", MaxAddSource)})
	d.Param(&p.Wording, actions.Param{Name: "wording", Default: "", Example: "Hi, welcome!",
		Doc: "the friend request's message (AddWording)"})
}

func (p *FriendAddParams) accounts() (string, []string) { return p.From, p.To }

var friendAddSpec = actions.Spec{
	Name: "im.friend_add",
	Doc: "Adds friends through the IM REST API (sns/friend_add): `from` (an official account adding back " +
		"whoever added it) befriends each account of `to`, at most 100 per request. A request awaiting the " +
		"other side's confirmation (30539) is done (logged). Accounts IM reports failed transiently are " +
		"retried alone; those that cannot succeed (blocklisted, refusing all requests, friend limit) go to a " +
		"dead letter of their own with the code. Never runs for an event that friendflow's own admin " +
		"account caused (Admin_Account is the configured admin): such a job is skipped (outcome skipped, " +
		"with why, in the recorded event), so an add cannot call back into another add.",
	Params:    actions.ParamsOf[FriendAddParams](),
	Validate:  validateFriendAdd,
	CallsBack: []string{"Sns.CallbackFriendAdd"},
}

func validateFriendAdd(p map[string]any) error {
	if err := validateSns(p); err != nil {
		return err
	}
	if s, ok := p["remark"].(string); ok && len(s) > MaxRemark {
		return &actions.ParamError{Path: "remark", Msg: fmt.Sprintf("%d bytes, more than IM's %d", len(s), MaxRemark)}
	}
	if s, ok := p["group"].(string); ok && len(s) > MaxGroupName {
		return &actions.ParamError{Path: "group", Msg: fmt.Sprintf("%d bytes, more than IM's %d", len(s), MaxGroupName)}
	}
	if s, ok := p["source"].(string); ok && !validSource(s) {
		return &actions.ParamError{Path: "source", Msg: fmt.Sprintf("%q: want 1 to %d letters (sent after AddSource_Type_)", s, MaxAddSource)}
	}
	return nil
}

func validSource(s string) bool {
	if s == "" || len(s) > MaxAddSource {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

type friendAddBody struct {
	FromAccount   string          `json:"From_Account"`
	AddFriendItem []addFriendItem `json:"AddFriendItem"`
	AddType       string          `json:"AddType"`
	ForceAddFlags int             `json:"ForceAddFlags"`
}

type addFriendItem struct {
	ToAccount  string `json:"To_Account"`
	Remark     string `json:"Remark,omitempty"`
	GroupName  string `json:"GroupName,omitempty"`
	AddSource  string `json:"AddSource"`
	AddWording string `json:"AddWording,omitempty"`
}

func friendAddBodyOf(params any, from string, chunk []string) any {
	p := params.(FriendAddParams)
	b := &friendAddBody{FromAccount: from, AddType: "Add_Type_Both", AddFriendItem: make([]addFriendItem, len(chunk))}
	if p.AddType == "single" {
		b.AddType = "Add_Type_Single"
	}
	if p.Force {
		b.ForceAddFlags = 1
	}
	for i, a := range chunk {
		b.AddFriendItem[i] = addFriendItem{ToAccount: a, Remark: p.Remark, GroupName: p.Group,
			AddSource: "AddSource_Type_" + p.Source, AddWording: p.Wording}
	}
	return b
}

// causedByAdmin reports an event that friendflow's own admin account
// caused: Sns.CallbackFriendAdd's Admin_Account is "the admin account if
// the add came from the backend, else empty"
// (https://www.tencentcloud.com/document/product/1047/34359). An add made
// by friendflow's admin calls back with it, and adding again would call
// back again: a loop. An admin account shared with another backend is
// skipped too; the field cannot tell them apart.
func causedByAdmin(c *Client, job actions.Job) (string, bool) {
	var ev struct {
		Admin string `json:"Admin_Account"`
	}
	if len(job.Event) == 0 || json.Unmarshal(job.Event, &ev) != nil || ev.Admin == "" {
		return "", false
	}
	if ev.Admin != c.Admin() {
		return "", false
	}
	return "the event was caused by friendflow's own admin account (Admin_Account " + ev.Admin + "): not adding, no add loop", true
}

// NewFriendAdd returns the im.friend_add kind; c may be nil, as for NewSend.
func NewFriendAdd(c *Client) actions.Kind {
	return &snsKind{c: c, spec: friendAddSpec, path: FriendAddPath, chunk: MaxFriendAdd,
		body: friendAddBodyOf, done: doneByTable, skip: causedByAdmin,
		decode: decodeSns[FriendAddParams](friendAddSpec)}
}

// ---- im.friend_delete

// FriendDeleteParams are an im.friend_delete job's parameters.
type FriendDeleteParams struct {
	From       string
	To         []string
	DeleteType string
}

// DeclareParams implements actions.Declarer.
func (p *FriendDeleteParams) DeclareParams(d *actions.Decl) {
	declareFromTo(d, &p.From, &p.To, "the UserID whose friend list loses the accounts (From_Account)",
		fmt.Sprintf("the friends to delete (To_Account), sent %d per request", MaxFriendDelete))
	d.Param(&p.DeleteType, actions.Param{Name: "delete_type", Default: "both", Enum: []string{"both", "single"}, Example: "single",
		Doc: "both (Delete_Type_Both): each side leaves the other's list; single (Delete_Type_Single): only `from`'s list changes. Always sent: the page states no default"})
}

func (p *FriendDeleteParams) accounts() (string, []string) { return p.From, p.To }

var friendDeleteSpec = actions.Spec{
	Name: "im.friend_delete",
	Doc: "Ends friendships through the IM REST API (sns/friend_delete): each account of `to` leaves " +
		"`from`'s friend list (and, with delete_type both, `from` leaves theirs), at most 1000 per request. " +
		"An account that is no friend (31704) is done. Accounts IM reports failed transiently (30006, 30007, " +
		"30008, 31707) are retried alone; the others go to a dead letter of their own with the code.",
	Params:   actions.ParamsOf[FriendDeleteParams](),
	Validate: validateSns,
}

type friendDeleteBody struct {
	FromAccount string   `json:"From_Account"`
	ToAccount   []string `json:"To_Account"`
	DeleteType  string   `json:"DeleteType"`
}

func friendDeleteBodyOf(params any, from string, chunk []string) any {
	p := params.(FriendDeleteParams)
	b := &friendDeleteBody{FromAccount: from, ToAccount: chunk, DeleteType: "Delete_Type_Both"}
	if p.DeleteType == "single" {
		b.DeleteType = "Delete_Type_Single"
	}
	return b
}

// NewFriendDelete returns the im.friend_delete kind; c may be nil, as for NewSend.
func NewFriendDelete(c *Client) actions.Kind {
	return &snsKind{c: c, spec: friendDeleteSpec, path: FriendDeletePath, chunk: MaxFriendDelete,
		body: friendDeleteBodyOf, done: doneByTable, decode: decodeSns[FriendDeleteParams](friendDeleteSpec)}
}

// ---- im.blacklist_add

// BlacklistAddParams are an im.blacklist_add job's parameters.
type BlacklistAddParams struct {
	From string
	To   []string
}

// DeclareParams implements actions.Declarer.
func (p *BlacklistAddParams) DeclareParams(d *actions.Decl) {
	declareFromTo(d, &p.From, &p.To, "the UserID whose blocklist gains the accounts (From_Account)",
		fmt.Sprintf("the UserIDs to block (To_Account), sent %d per request", MaxBlacklistAdd))
}

func (p *BlacklistAddParams) accounts() (string, []string) { return p.From, p.To }

var blacklistAddSpec = actions.Spec{
	Name: "im.blacklist_add",
	Doc: "Blocks users through the IM REST API (sns/black_list_add): each account of `to` goes on `from`'s " +
		"blocklist, which also ends their friendship both ways, at most 1000 per request. An account already " +
		"blocked (30001 with Err_SNS_BlackListAdd_Already_Exist) is done. Accounts IM reports failed " +
		"transiently are retried alone; the others (a full blocklist: 30013) go to a dead letter of their " +
		"own with the code.",
	Params:   actions.ParamsOf[BlacklistAddParams](),
	Validate: validateSns,
}

type blacklistAddBody struct {
	FromAccount string   `json:"From_Account"`
	ToAccount   []string `json:"To_Account"`
}

func blacklistAddBodyOf(_ any, from string, chunk []string) any {
	return &blacklistAddBody{FromAccount: from, ToAccount: chunk}
}

// blacklistDone: an account already blocked is done, known by code and
// info together (see blacklistAlreadyInfo).
func blacklistDone(code int, info string) (string, bool) {
	if code == 30001 && info == blacklistAlreadyInfo {
		return "already on the blocklist", true
	}
	return doneByTable(code, info)
}

// NewBlacklistAdd returns the im.blacklist_add kind; c may be nil, as for NewSend.
func NewBlacklistAdd(c *Client) actions.Kind {
	return &snsKind{c: c, spec: blacklistAddSpec, path: BlacklistAddPath, chunk: MaxBlacklistAdd,
		body: blacklistAddBodyOf, done: blacklistDone, decode: decodeSns[BlacklistAddParams](blacklistAddSpec)}
}
