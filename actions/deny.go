package actions

import (
	"context"
	"fmt"
)

// Deny is the deny kind. It only declares the decision: the engine reads
// the rendered code and reason into the before-callback's reply while IM
// waits, so deny is never queued and Do does nothing.
type Deny struct{}

var denySpec = Spec{
	Name: "deny",
	Doc: fmt.Sprintf("Refuses the friend request (or response) in the before-callback's reply: the target's "+
		"ResultItem carries `code` (%d–%d) and `reason`. Decided synchronously, never queued.", MinDenyCode, MaxDenyCode),
	Sync:   true,
	Params: ParamsOf[DenyParams](),
	Validate: func(p map[string]any) error {
		if c, ok := p["code"].(int64); ok && (c < MinDenyCode || c > MaxDenyCode) {
			return &ParamError{Path: "code", Msg: fmt.Sprintf("%d is outside %d to %d", c, MinDenyCode, MaxDenyCode)}
		}
		return nil
	},
}

// The result codes IM accepts from a before-callback to refuse a friend
// request or response: ResultCode in ResultItem, documented on the pages of
// Sns.CallbackPrevFriendAdd (https://www.tencentcloud.com/document/product/1047/43468)
// and Sns.CallbackPrevFriendResponse (https://www.tencentcloud.com/document/product/1047/43467).
const (
	MinDenyCode = 38000
	MaxDenyCode = 39000
)

// Spec implements Kind.
func (Deny) Spec() Spec { return denySpec }

// DenyParams are a deny action's parameters.
type DenyParams struct {
	Code   int64 // the ResultCode, MinDenyCode to MaxDenyCode
	Reason string
}

// DeclareParams implements Declarer.
func (p *DenyParams) DeclareParams(d *Decl) {
	d.Param(&p.Code, Param{Name: "code", Example: `38001`, Required: true, Doc: fmt.Sprintf("the ResultCode, %d to %d", MinDenyCode, MaxDenyCode)})
	d.Param(&p.Reason, Param{Name: "reason", Example: `requests from test accounts are closed`, Default: "", Doc: "the ResultInfo shown to the requester's app"})
}

// Do implements Kind. The engine has already decided; Do only refuses
// parameters that do not decode, like every kind.
func (Deny) Do(_ context.Context, _ Job, params map[string]any) error {
	if _, err := Decode[DenyParams](denySpec, params); err != nil {
		return Permanent(fmt.Errorf("deny: %w", err))
	}
	return nil
}
