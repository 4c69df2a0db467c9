package actions

import (
	"context"
	"fmt"
)

// The result codes IM accepts from a before-callback to refuse a friend
// request or response (protocol/tencent-im.md §2.1, §2.2).
const (
	MinDenyCode = 38000
	MaxDenyCode = 39000
)

// Deny is the deny kind. It only declares the decision: the engine reads
// the rendered code and reason into the before-callback's reply while IM
// waits, so deny is never queued and Do does nothing.
type Deny struct{}

var denySpec = Spec{
	Name: "deny",
	Doc: fmt.Sprintf("Refuses the friend request (or response) in the before-callback's reply: the target's "+
		"ResultItem carries `code` (%d–%d) and `reason`. Decided synchronously, never queued.", MinDenyCode, MaxDenyCode),
	// Literal command names: actions must not import rules.
	Commands: []string{"Sns.CallbackPrevFriendAdd", "Sns.CallbackPrevFriendResponse"},
	Sync:     true,
	Params: []Param{
		{Name: "code", Type: Int, Required: true, Doc: fmt.Sprintf("the ResultCode, %d to %d", MinDenyCode, MaxDenyCode)},
		{Name: "reason", Type: String, Default: "", Doc: "the ResultInfo shown to the requester's app"},
	},
	Validate: func(p map[string]any) error {
		if c, ok := p["code"].(int64); ok && (c < MinDenyCode || c > MaxDenyCode) {
			return &ParamError{Path: "code", Msg: fmt.Sprintf("%d is outside %d to %d", c, MinDenyCode, MaxDenyCode)}
		}
		return nil
	},
}

// Spec implements Kind.
func (Deny) Spec() Spec { return denySpec }

// Do implements Kind; the engine has already decided.
func (Deny) Do(context.Context, Job, map[string]any) error { return nil }
