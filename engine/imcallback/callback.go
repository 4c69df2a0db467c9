package imcallback

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxPairs caps the elements of one callback's pair list. Tencent's own
// batch APIs stop well below it; a larger list is an attack or a bug.
const MaxPairs = 1000

// Callback is one decoded Tencent IM callback: its query metadata and the
// events it carries, one per element of PairList, FriendItem or
// ResponseFriendItem.
type Callback struct {
	ID          string // ours, for logs: Tencent's callbacks carry no id
	Command     string
	SdkAppid    int
	ClientIP    string
	OptPlatform string
	ReceivedAt  time.Time
	Events      []Event
}

// Reply is the JSON body Tencent expects back. ResultItem is only sent for
// the Prev callbacks, where it decides each target.
type Reply struct {
	ActionStatus string       `json:"ActionStatus"`
	ErrorCode    int          `json:"ErrorCode"`
	ErrorInfo    string       `json:"ErrorInfo"`
	ResultItem   []ResultItem `json:"ResultItem,omitempty"`
}

// ResultItem is the decision for one target of a Prev callback: ResultCode 0
// allows, a code in [38000, 39000] denies.
type ResultItem struct {
	To_Account string `json:"To_Account"`
	ResultCode int    `json:"ResultCode"`
	ResultInfo string `json:"ResultInfo"`
}

// The result codes IM accepts from a before-callback to refuse a friend
// request or response.
const (
	MinDenyCode = 38000
	MaxDenyCode = 39000
)

// OK is the reply to every accepted after-callback.
func OK() Reply { return Reply{ActionStatus: "OK"} }

// Fail is the reply to a callback friendflow could not accept.
func Fail(reason string) Reply {
	return Reply{ActionStatus: "FAIL", ErrorCode: 1, ErrorInfo: reason}
}

// AllowAll is the reply to a Prev callback that lets every target through.
func AllowAll(cb *Callback) Reply {
	r := OK()
	if IsPrev(cb.Command) {
		r.ResultItem = make([]ResultItem, len(cb.Events))
		for i := range cb.Events {
			r.ResultItem[i] = ResultItem{To_Account: cb.Events[i].To_Account}
		}
	}
	return r
}

// body holds every field of the six Sns callbacks; which ones are set
// depends on the command. Unknown fields are ignored so that newer
// versions of a callback keep working.
type body struct {
	CallbackCommand string `json:"CallbackCommand"`
	EventTime       int64  `json:"EventTime"`

	PairList []struct {
		From_Account      string `json:"From_Account"`
		To_Account        string `json:"To_Account"`
		Initiator_Account string `json:"Initiator_Account"`
	} `json:"PairList"`
	ClientCmd     string `json:"ClientCmd"`
	Admin_Account string `json:"Admin_Account"`
	ForceFlag     int    `json:"ForceFlag"`

	Requester_Account string `json:"Requester_Account"`
	From_Account      string `json:"From_Account"`
	FriendItem        []struct {
		To_Account string `json:"To_Account"`
		Remark     string `json:"Remark"`
		GroupName  string `json:"GroupName"`
		AddSource  string `json:"AddSource"`
		AddWording string `json:"AddWording"`
	} `json:"FriendItem"`
	AddType       string `json:"AddType"`
	ForceAddFlags int    `json:"ForceAddFlags"`

	ResponseFriendItem []struct {
		To_Account     string `json:"To_Account"`
		Remark         string `json:"Remark"`
		TagName        string `json:"TagName"`
		ResponseAction string `json:"ResponseAction"`
	} `json:"ResponseFriendItem"`
}

// DecodeError is a callback body friendflow refuses. Msg is safe to send
// back to the caller and to log; Reason is one of the Reason constants.
type DecodeError struct{ Reason, Msg string }

func (e *DecodeError) Error() string { return e.Msg }

func decodeErr(reason, format string, a ...any) error {
	return &DecodeError{Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

// Decode turns the body of one of the six Sns callbacks into events. cb's
// Command and query fields must be set; Decode fills cb.Events. The body's
// CallbackCommand must equal cb.Command.
func Decode(data []byte, cb *Callback) error {
	var b body
	if b.decodeFast(data) {
		return b.events(cb)
	}
	// A body of its own: decodeFast may have filled part of b, and
	// Unmarshal merges into what it finds. On the heap, as Unmarshal needs;
	// b stays on the stack.
	slow := new(body)
	if err := unmarshalBody(data, slow); err != nil {
		return err
	}
	return slow.events(cb)
}

// unmarshalBody is the general path, for whatever decodeFast refuses, and
// the one that words every error about the JSON itself.
func unmarshalBody(data []byte, b *body) error {
	// Unmarshal, not a Decoder: it reads the body in place (no buffer copy)
	// and refuses anything after the object.
	if err := json.Unmarshal(data, b); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ):
			return decodeErr(ReasonMalformed, "malformed JSON: field %s: want %s, got %s", typ.Field, typ.Type, typ.Value)
		case errors.As(err, &syn):
			return decodeErr(ReasonMalformed, "malformed JSON at byte %d: %v", syn.Offset, err)
		default:
			return decodeErr(ReasonMalformed, "malformed JSON: %v", err)
		}
	}
	return nil
}

// events checks a decoded body against cb and sets cb.Events.
func (b *body) events(cb *Callback) error {
	if b.CallbackCommand != cb.Command {
		return decodeErr(ReasonCommandMismatch, "CallbackCommand in query (%q) differs from body (%q)", cb.Command, b.CallbackCommand)
	}
	base := Event{
		CallbackCommand: cb.Command,
		SdkAppid:        cb.SdkAppid,
		ClientIP:        cb.ClientIP,
		OptPlatform:     cb.OptPlatform,
		EventTime:       int(b.EventTime),
	}
	if base.EventTime == 0 {
		base.EventTime = int(cb.ReceivedAt.UnixMilli())
	}
	var n int
	switch cb.Command {
	case CmdFriendAdd, CmdFriendDelete, CmdBlackListAdd, CmdBlackListDelete:
		n = len(b.PairList)
	case CmdPrevFriendAdd:
		n = len(b.FriendItem)
	case CmdPrevFriendResponse:
		n = len(b.ResponseFriendItem)
	default:
		return decodeErr(ReasonMalformed, "unsupported CallbackCommand %q", cb.Command)
	}
	if n == 0 {
		return decodeErr(ReasonPairs, "%s: %s is empty", cb.Command, listName(cb.Command))
	}
	if n > MaxPairs {
		return decodeErr(ReasonPairs, "%s: %s has %d elements, more than %d", cb.Command, listName(cb.Command), n, MaxPairs)
	}
	events := make([]Event, n)
	for i := range events {
		e := base
		e.PairIndex, e.PairCount = i, n
		switch cb.Command {
		case CmdFriendAdd:
			p := b.PairList[i]
			e.From_Account, e.To_Account, e.Initiator_Account = p.From_Account, p.To_Account, p.Initiator_Account
			e.ClientCmd, e.Admin_Account, e.ForceFlag = b.ClientCmd, b.Admin_Account, b.ForceFlag
		case CmdFriendDelete, CmdBlackListAdd, CmdBlackListDelete:
			p := b.PairList[i]
			e.From_Account, e.To_Account = p.From_Account, p.To_Account
		case CmdPrevFriendAdd:
			it := b.FriendItem[i]
			e.Requester_Account, e.From_Account, e.To_Account = b.Requester_Account, b.From_Account, it.To_Account
			e.Remark, e.GroupName, e.AddSource, e.AddWording = it.Remark, it.GroupName, it.AddSource, it.AddWording
			e.AddType, e.ForceAddFlags = b.AddType, b.ForceAddFlags
		case CmdPrevFriendResponse:
			it := b.ResponseFriendItem[i]
			e.Requester_Account, e.From_Account, e.To_Account = b.Requester_Account, b.From_Account, it.To_Account
			e.Remark, e.TagName, e.ResponseAction = it.Remark, it.TagName, it.ResponseAction
		}
		if e.To_Account == "" {
			return decodeErr(ReasonPairs, "%s: %s[%d].To_Account is empty", cb.Command, listName(cb.Command), i)
		}
		events[i] = e
	}
	cb.Events = events
	return nil
}

func listName(cmd string) string {
	switch cmd {
	case CmdPrevFriendAdd:
		return "FriendItem"
	case CmdPrevFriendResponse:
		return "ResponseFriendItem"
	}
	return "PairList"
}
