package im

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/friendflow/friendflow/actions"
)

// MaxGroupAdd is how many members one add_group_member request adds. The
// API page says 300, Tencent's usage-limits page 100: the smaller holds
// under both (https://www.tencentcloud.com/document/product/1047/34921).
const MaxGroupAdd = 100

// MaxGroupJob bounds the members of one im.add_to_group job (ten requests).
const MaxGroupJob = 1000

// Member results of add_group_member; 0 is a failure.
const (
	memberAdded    = 1
	memberAlready  = 2
	memberAwaiting = 3 // invited; the invitee has to confirm
)

// AddToGroup is the im.add_to_group kind: group_open_http_svc/add_group_member.
type AddToGroup struct {
	c *Client
}

// NewAddToGroup returns the im.add_to_group kind; c may be nil, as for NewSend.
func NewAddToGroup(c *Client) *AddToGroup { return &AddToGroup{c: c} }

var addToGroupSpec = actions.Spec{
	Name: "im.add_to_group",
	Doc: "Adds users to a group through the IM REST API (group_open_http_svc/add_group_member), at most 100 " +
		"per request (longer lists are split). A member added, already a member, or invited and awaiting " +
		"their confirmation (logged) is done; members IM reports failed are retried alone. A request " +
		"refused for one account (10019: no such UserID) is narrowed to the members at fault, who go to a " +
		"dead letter of their own with the code, and the others are added; a rate limit (10006) is retried. " +
		"An unknown group and an AVChatRoom (10007), which takes no added members, are permanent failures.",
	Params:   actions.ParamsOf[AddToGroupParams](),
	Validate: validateAddToGroup,
}

func validateAddToGroup(p map[string]any) error {
	if g, ok := p["group"].(string); ok && g == "" {
		return &actions.ParamError{Path: "group", Msg: "must not be empty"}
	}
	return nonEmptyItems(p, "members")
}

// nonEmptyItems reports an empty string in the list p[key] (items still
// to be rendered are skipped).
func nonEmptyItems(p map[string]any, key string) error {
	i := -1
	switch l := p[key].(type) {
	case []string:
		i = slices.Index(l, "")
	case []any:
		i = slices.IndexFunc(l, func(x any) bool { return x == "" })
	}
	if i >= 0 {
		return &actions.ParamError{Path: key, Msg: fmt.Sprintf("item %d is empty", i+1)}
	}
	return nil
}

// Spec implements actions.Kind.
func (a *AddToGroup) Spec() actions.Spec { return addToGroupSpec }

// AddToGroupParams are an im.add_to_group job's parameters.
type AddToGroupParams struct {
	Group   string
	Members []string // nil: the event's To_Account
	Silence bool
}

// DeclareParams implements actions.Declarer.
func (p *AddToGroupParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.Group, actions.Param{Name: "group", Required: true, Example: "onboarding-2026",
		Doc: "the GroupId"})
	d.Param(&p.Members, actions.Param{Name: "members", MinItems: 1, MaxItems: MaxGroupJob, Example: "[\"${ From_Account }\"]",
		Doc: "the UserIDs to add; absent: the event's To_Account"})
	d.Param(&p.Silence, actions.Param{Name: "silence", Default: false, Example: "true",
		Doc: "add without the group's system notice (Silence 1)"})
}

type addGroupMember struct {
	GroupID    string        `json:"GroupId"`
	Silence    int           `json:"Silence,omitempty"`
	MemberList []groupMember `json:"MemberList"`
}

type groupMember struct {
	MemberAccount string `json:"Member_Account"`
}

type addGroupMemberResponse struct {
	MemberList []struct {
		MemberAccount string `json:"Member_Account"`
		Result        int    `json:"Result"`
	} `json:"MemberList"`
}

// Do implements actions.Kind. Adding is idempotent (2: already a member),
// so a repeated attempt is harmless; still, members IM accepted are left
// out of the next attempt's params (actions.WithRemaining), and each member
// IM refuses for good is reported by account, in a dead letter of its own
// (actions.WithAbandoned), while the others are added.
func (a *AddToGroup) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	if a.c == nil {
		return notConfigured("im.add_to_group")
	}
	p, err := actions.Decode[AddToGroupParams](addToGroupSpec, params)
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.add_to_group: %w", err))
	}
	members := p.Members
	if members == nil {
		if members, err = eventAccount(job.Event, "To_Account"); err != nil {
			return actions.Permanent(fmt.Errorf("im.add_to_group: members: %w", err))
		}
	}
	members = uniq(members)
	out := newAccounts()
	for i := 0; i < len(members); i += MaxGroupAdd {
		chunk := members[i:min(i+MaxGroupAdd, len(members))]
		if !a.add(ctx, job, p, chunk, out) {
			// A pause asked for (a rate limit, IM's trouble): the
			// chunks not sent yet go to the retry.
			for _, m := range members[i+len(chunk):] {
				out.again(m, noAnswer, 0)
			}
			break
		}
	}
	out.report(ctx, a.c.log, "im.add_to_group", job)
	return out.result(fmt.Sprintf("im.add_to_group %s: members", p.Group), job, "members", len(members))
}

// add sends one request for chunk and sorts its members into out. It
// returns false when the request failed transiently as a whole.
//
// A whole-request failure for a per-account reason (10019: a requested
// UserID does not exist; the page says to check every Member_Account,
// https://trtc.io/document/34921, and does not say which one or whether
// the others were added) is narrowed: the chunk is split in halves and
// each half sent again, down to the members at fault, so everyone else is
// added. Adding is idempotent, so sending a member twice is harmless.
func (a *AddToGroup) add(ctx context.Context, job actions.Job, p AddToGroupParams, chunk []string, out *accounts) bool {
	body := &addGroupMember{GroupID: p.Group, MemberList: make([]groupMember, len(chunk))}
	if p.Silence {
		body.Silence = 1
	}
	for i, m := range chunk {
		body.MemberList[i].MemberAccount = m
	}
	var resp addGroupMemberResponse
	if err := a.c.Call(ctx, AddToGroupPath, body, &resp); err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) && classOf(apiErr.Code) == ClassAccount {
			if len(chunk) == 1 {
				out.fail(chunk[0], apiErr.Code, "")
				return true
			}
			half := len(chunk) / 2
			if !a.add(ctx, job, p, chunk[:half], out) {
				for _, m := range chunk[half:] {
					out.again(m, noAnswer, 0)
				}
				return false
			}
			return a.add(ctx, job, p, chunk[half:], out)
		}
		out.byError(chunk, err)
		permanent, _ := actions.Classify(err)
		return permanent
	}
	result := make(map[string]int, len(resp.MemberList))
	for _, m := range resp.MemberList {
		result[m.MemberAccount] = m.Result
	}
	for _, m := range chunk {
		switch r, ok := result[m]; {
		case ok && (r == memberAdded || r == memberAlready):
		case ok && r == memberAwaiting:
			a.c.log.LogAttrs(ctx, slog.LevelInfo, "im.add_to_group: invited, awaiting the member's confirmation",
				slog.String("job_id", job.ID), slog.String("group", p.Group), slog.String("member", m))
		default:
			// Result 0 (failed) carries no code; retried, as before.
			out.again(m, 0, 0)
		}
	}
	return true
}

// eventAccount reads an account field of the job's event as a one-item list.
func eventAccount(event json.RawMessage, field string) ([]string, error) {
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, fmt.Errorf("reading the event's %s: %w", field, err)
	}
	s, _ := ev[field].(string)
	if s == "" {
		return nil, fmt.Errorf("absent, and the event has no %s", field)
	}
	return []string{s}, nil
}
