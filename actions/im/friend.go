package im

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/friendflow/friendflow/actions"
)

// Limits of friend fields (https://www.tencentcloud.com/document/product/1047/33521,
// relationship chain fields; custom field values as profile fields,
// https://www.tencentcloud.com/document/product/1047/33520).
const (
	MaxRemark       = 96  // bytes of Tag_SNS_IM_Remark
	MaxFriendGroups = 32  // names in Tag_SNS_IM_Group
	MaxGroupName    = 30  // bytes of one friend group's name
	MaxCustomKey    = 8   // characters of a custom field's name, after Tag_SNS_Custom_
	MaxCustomValue  = 500 // bytes of a custom field's string value
	// MaxUpdateItems is how many friends one friend_update request updates
	// (https://www.tencentcloud.com/document/product/1047/34904).
	MaxUpdateItems = 1000
)

// Tags of friend_update's SnsItem.
const (
	tagRemark       = "Tag_SNS_IM_Remark"
	tagGroup        = "Tag_SNS_IM_Group"
	customTagPrefix = "Tag_SNS_Custom_"
)

// FriendUpdate is the im.friend_update kind: sns/friend_update. It is an
// actions.Merger: the queue hands it the updates of one `from` that are due
// together in one call, and they go to IM in one request, as Tencent
// advises, so they cannot conflict with each other (30008).
type FriendUpdate struct {
	c *Client
}

// NewFriendUpdate returns the im.friend_update kind; c may be nil, as for NewSend.
func NewFriendUpdate(c *Client) *FriendUpdate { return &FriendUpdate{c: c} }

var friendUpdateSpec = actions.Spec{
	Name: "im.friend_update",
	Doc: "Labels a friendship through the IM REST API (sns/friend_update): the remark, friend groups and " +
		"custom fields that `from` keeps about `to`. Updates for the same `from` that are due together " +
		"(the jobs of one stored callback, due at the same time) go to IM in one request, so they do not " +
		"conflict; a write conflict with anything else (30008) is retried.",
	Params:   actions.ParamsOf[FriendUpdateParams](),
	Validate: validateFriendUpdate,
}

func validateFriendUpdate(p map[string]any) error {
	for _, k := range []string{"from", "to"} {
		if s, ok := p[k].(string); ok && s == "" {
			return &actions.ParamError{Path: k, Msg: "must not be empty"}
		}
	}
	_, r := p["remark"]
	_, g := p["groups"]
	_, c := p["custom"]
	if !r && !g && !c {
		return &actions.ParamError{Path: "remark", Msg: "nothing to update: give remark, groups or custom"}
	}
	if s, ok := p["remark"].(string); ok && len(s) > MaxRemark {
		return &actions.ParamError{Path: "remark", Msg: fmt.Sprintf("%d bytes, more than IM's %d", len(s), MaxRemark)}
	}
	if err := checkGroupNames(p["groups"]); err != nil {
		return err
	}
	if m, ok := p["custom"].(map[string]string); ok {
		return checkCustom(m)
	}
	return nil
}

func checkGroupNames(v any) error {
	names, ok := v.([]string)
	if !ok {
		return nil // absent, or holding templates: checked once rendered
	}
	for i, n := range names {
		if n == "" || len(n) > MaxGroupName {
			return &actions.ParamError{Path: "groups", Msg: fmt.Sprintf("item %d: a friend group's name has 1 to %d bytes, got %d", i+1, MaxGroupName, len(n))}
		}
	}
	return nil
}

// checkCustom checks the custom fields' names against IM's rules for field
// keys (letters, digits and _; https://www.tencentcloud.com/document/product/1047/33520)
// and the console's length limit, and their values' size. A value still to
// be rendered is "" here (see actions.StringMap) and passes.
func checkCustom(m map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !validCustomKey(k) {
			return &actions.ParamError{Path: "custom." + k, Msg: fmt.Sprintf("custom field name %q: want 1 to %d letters, digits or _ (without the %s prefix)", k, MaxCustomKey, customTagPrefix)}
		}
		if len(m[k]) > MaxCustomValue {
			return &actions.ParamError{Path: "custom." + k, Msg: fmt.Sprintf("%d bytes, more than IM's %d", len(m[k]), MaxCustomValue)}
		}
	}
	return nil
}

func validCustomKey(k string) bool {
	if k == "" || len(k) > MaxCustomKey {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Spec implements actions.Kind.
func (f *FriendUpdate) Spec() actions.Spec { return friendUpdateSpec }

// FriendUpdateParams are an im.friend_update job's parameters.
type FriendUpdateParams struct {
	From   string
	To     string
	Remark *string  // nil: unchanged
	Groups []string // nil: unchanged
	Custom map[string]string
}

// DeclareParams implements actions.Declarer.
func (p *FriendUpdateParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.From, actions.Param{Name: "from", Required: true, Example: "${ From_Account }",
		Doc: "the UserID whose friend list is updated (From_Account)"})
	d.Param(&p.To, actions.Param{Name: "to", Required: true, Example: "${ To_Account }",
		Doc: "the friend whose entry is updated (To_Account)"})
	d.Param(&p.Remark, actions.Param{Name: "remark", Example: "met at onboarding",
		Doc: fmt.Sprintf("the remark (%s), at most %d bytes", tagRemark, MaxRemark)})
	d.Param(&p.Groups, actions.Param{Name: "groups", MaxItems: MaxFriendGroups, Example: "[new-users, vip]",
		Doc: fmt.Sprintf("the friend groups (%s), replacing the current ones: names of 1 to %d bytes", tagGroup, MaxGroupName)})
	d.Param(&p.Custom, actions.Param{Name: "custom", Example: "{source: official_account}",
		Doc: fmt.Sprintf("custom friend fields, configured in the IM console first: each key becomes %s<key> (1 to %d letters, digits or _), each value a string of at most %d bytes", customTagPrefix, MaxCustomKey, MaxCustomValue)})
}

type friendUpdate struct {
	FromAccount string       `json:"From_Account"`
	UpdateItem  []updateItem `json:"UpdateItem"`
}

type updateItem struct {
	ToAccount string    `json:"To_Account"`
	SnsItem   []snsItem `json:"SnsItem"`
}

type snsItem struct {
	Tag   string `json:"Tag"`
	Value any    `json:"Value"` // a string, or a list of strings for Tag_SNS_IM_Group
}

type friendUpdateResponse struct {
	ResultItem []struct {
		ToAccount  string `json:"To_Account"`
		ResultCode int    `json:"ResultCode"`
		ResultInfo string `json:"ResultInfo"`
	} `json:"ResultItem"`
}

func (p FriendUpdateParams) item() updateItem {
	it := updateItem{ToAccount: p.To}
	if p.Remark != nil {
		it.SnsItem = append(it.SnsItem, snsItem{Tag: tagRemark, Value: *p.Remark})
	}
	if p.Groups != nil {
		it.SnsItem = append(it.SnsItem, snsItem{Tag: tagGroup, Value: p.Groups})
	}
	// In key order: a stable body, the same job sends the same bytes.
	for _, k := range slices.Sorted(maps.Keys(p.Custom)) {
		it.SnsItem = append(it.SnsItem, snsItem{Tag: customTagPrefix + k, Value: p.Custom[k]})
	}
	return it
}

// Do implements actions.Kind: one job, one request.
func (f *FriendUpdate) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	return f.DoMerged(ctx, []actions.Job{job}, []map[string]any{params})[0]
}

// MergeKey implements actions.Merger: updates of one from go together.
func (f *FriendUpdate) MergeKey(params map[string]any) string {
	from, _ := params["from"].(string)
	return from
}

// DoMerged implements actions.Merger. The jobs' items go to IM in as few
// requests as can hold them: at most MaxUpdateItems each, and one item per
// friend in a request (two updates of one friend go to successive
// requests, in the jobs' order, so the later one wins as it would alone).
// Each job gets the result of its own item.
func (f *FriendUpdate) DoMerged(ctx context.Context, jobs []actions.Job, params []map[string]any) []error {
	errs := make([]error, len(jobs))
	if f.c == nil {
		for i := range errs {
			errs[i] = notConfigured("im.friend_update")
		}
		return errs
	}
	byFrom := map[string][]int{}
	var froms []string
	items := make([]updateItem, len(jobs))
	for i := range jobs {
		p, err := actions.Decode[FriendUpdateParams](friendUpdateSpec, params[i])
		if err != nil {
			errs[i] = actions.Permanent(fmt.Errorf("im.friend_update: %w", err))
			continue
		}
		items[i] = p.item()
		if _, seen := byFrom[p.From]; !seen {
			froms = append(froms, p.From)
		}
		byFrom[p.From] = append(byFrom[p.From], i)
	}
	for _, from := range froms {
		for _, req := range updateRequests(byFrom[from], items) {
			f.update(ctx, from, req, items, errs)
		}
	}
	return errs
}

// updateRequests splits the jobs of one from into requests: each item
// goes to the first request with room after the last one holding the same
// friend.
func updateRequests(idx []int, items []updateItem) [][]int {
	var reqs [][]int
	last := map[string]int{} // friend → index of the last request holding it
	for _, i := range idx {
		to := items[i].ToAccount
		r := 0
		if l, ok := last[to]; ok {
			r = l + 1
		}
		for r < len(reqs) && len(reqs[r]) >= MaxUpdateItems {
			r++
		}
		if r == len(reqs) {
			reqs = append(reqs, nil)
		}
		reqs[r] = append(reqs[r], i)
		last[to] = r
	}
	return reqs
}

// update sends the items of req (indexes into items and errs) for from,
// and sets each job's error.
func (f *FriendUpdate) update(ctx context.Context, from string, req []int, items []updateItem, errs []error) {
	body := &friendUpdate{FromAccount: from, UpdateItem: make([]updateItem, len(req))}
	for k, i := range req {
		body.UpdateItem[k] = items[i]
	}
	var resp friendUpdateResponse
	if err := f.c.Call(ctx, FriendUpdatePath, body, &resp); err != nil && len(resp.ResultItem) == 0 {
		var apiErr *Error
		if len(req) > 1 && errors.As(err, &apiErr) && classOf(apiErr.Code) == ClassAccount {
			// Refused as a whole for one account (which, the reply does
			// not say): each half again, down to the items at fault, so
			// the other friends are updated. An update sets the same
			// values again, so sending one twice is harmless.
			half := len(req) / 2
			f.update(ctx, from, req[:half], items, errs)
			f.update(ctx, from, req[half:], items, errs)
			return
		}
		for _, i := range req {
			errs[i] = fmt.Errorf("im.friend_update %s → %s: %w", from, items[i].ToAccount, err)
		}
		return
	}
	type result struct {
		code int
		info string
	}
	results := make(map[string]result, len(resp.ResultItem))
	for _, r := range resp.ResultItem {
		results[r.ToAccount] = result{r.ResultCode, r.ResultInfo}
	}
	for _, i := range req {
		to := items[i].ToAccount
		r, ok := results[to]
		switch {
		case !ok:
			errs[i] = actions.Transient(fmt.Errorf("im.friend_update %s → %s: IM's reply has no result for this friend", from, to), 0)
		case r.code != 0:
			errs[i] = fmt.Errorf("im.friend_update %s → %s: %w", from, to,
				classify(&Error{Path: FriendUpdatePath, HTTPStatus: 200, Code: r.code, Info: strings.TrimSpace(r.info)}))
		}
	}
}
