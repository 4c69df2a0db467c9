package imcallback

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/friendflow/friendflow/rules/imevent"
)

// DefaultMaxPairs is the default cap on the elements of one callback's
// pair list (Receiver.MaxPairs, --max-pairs). No page states how many
// pairs one Sns callback can carry; the largest list the documented limits
// allow is one user's whole friend list, at most 3000 friends
// (https://cloud.tencent.com/document/product/269/1501), in both
// directions: 6000 pairs. A larger list is refused whole, before anything
// of it is stored.
const DefaultMaxPairs = 6000

// PairBytes is the body room of one pair: the receiver's body limit grows
// with MaxPairs, so a list of MaxPairs pairs of the longest UserIDs (32
// bytes) always fits.
const PairBytes = 256

// Callback is one decoded Tencent IM callback: its query metadata and the
// events it carries, one per element of its command's list
// (imevent.Lists).
type Callback struct {
	ID          string // ours, for logs: Tencent's callbacks carry no id
	Command     string
	SdkAppid    int
	ClientIP    string
	OptPlatform string
	ReceivedAt  time.Time
	// RequestTime is the query's RequestTime, when Tencent sent a valid
	// one (it does with callback authentication on): when it sent the
	// request, the same in a replay of it.
	RequestTime time.Time
	Events      []imevent.Event
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

// OK is the reply to every accepted after-callback.
func OK() Reply { return Reply{ActionStatus: "OK"} }

// Error codes of a FAIL reply. The after-callback pages document 1 for a
// failure; the Prev pages ask for a code in [38000, 39000] when the app
// reports one (https://intl.cloud.tencent.com/document/product/1047/43468,
// https://intl.cloud.tencent.com/document/product/1047/43467).
const (
	FailCode     = 1
	PrevFailCode = 38000
)

// Fail is the reply to a callback of command cmd that friendflow could not
// accept: ErrorCode PrevFailCode for a Prev callback, FailCode otherwise.
func Fail(cmd, reason string) Reply {
	code := FailCode
	if imevent.IsPrev(cmd) {
		code = PrevFailCode
	}
	return Reply{ActionStatus: "FAIL", ErrorCode: code, ErrorInfo: reason}
}

// AllowAll is the reply to a Prev callback that lets every target through.
func AllowAll(cb *Callback) Reply {
	r := OK()
	if imevent.IsPrev(cb.Command) {
		r.ResultItem = make([]ResultItem, len(cb.Events))
		for i := range cb.Events {
			r.ResultItem[i] = ResultItem{To_Account: cb.Events[i].To_Account}
		}
	}
	return r
}

// DecodeError is a callback body friendflow refuses. Msg is safe to send
// back to the caller and to log; Reason is one of the Reason constants.
type DecodeError struct{ Reason, Msg string }

func (e *DecodeError) Error() string { return e.Msg }

func decodeErr(reason, format string, a ...any) error {
	return &DecodeError{Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

// Decode turns the body of one of the callbacks of imevent.Commands into
// events. cb's
// Command and query fields must be set; Decode fills cb.Events. The body's
// CallbackCommand must equal cb.Command. A list of more than
// DefaultMaxPairs elements is refused; see DecodeMax.
func Decode(data []byte, cb *Callback) error {
	return DecodeMax(data, cb, DefaultMaxPairs)
}

// DecodeMax is Decode with a list of more than maxPairs elements refused
// (maxPairs ≤ 0 means DefaultMaxPairs).
func DecodeMax(data []byte, cb *Callback, maxPairs int) error {
	if maxPairs <= 0 {
		maxPairs = DefaultMaxPairs
	}
	var b body
	if b.decodeFast(data) {
		return b.events(cb, maxPairs)
	}
	// A body of its own: decodeFast may have filled part of b, and
	// Unmarshal merges into what it finds. On the heap, as Unmarshal needs;
	// b stays on the stack.
	slow := new(body)
	if err := unmarshalBody(data, slow); err != nil {
		return err
	}
	return slow.events(cb, maxPairs)
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

// events checks a decoded body against cb and sets cb.Events. Which field
// comes from where is the field table's (imevent.Fields): listLen, shared and
// elements are generated from it; the checks and the derived fields are
// here.
func (b *body) events(cb *Callback, maxPairs int) error {
	if b.CallbackCommand != cb.Command {
		return decodeErr(ReasonCommandMismatch, "CallbackCommand in query (%q) differs from body (%q)", cb.Command, b.CallbackCommand)
	}
	n, ok := b.listLen(cb.Command)
	if !ok {
		return decodeErr(ReasonMalformed, "unsupported CallbackCommand %q", cb.Command)
	}
	if n == 0 {
		return decodeErr(ReasonPairs, "%s: %s is empty", cb.Command, listName(cb.Command))
	}
	if n > maxPairs {
		return decodeErr(ReasonPairs, "%s: %s has %d elements, more than %d (--max-pairs)", cb.Command, listName(cb.Command), n, maxPairs)
	}
	var base imevent.Event
	b.shared(cb, &base)
	if base.EventTime == 0 {
		// Tencent's send time, the same in a replay, so that what is
		// derived from the event (webhook delivery ids) is too.
		t := cb.RequestTime
		if t.IsZero() {
			t = cb.ReceivedAt
		}
		base.EventTime = int(t.UnixMilli())
	}
	events := make([]imevent.Event, n)
	b.elements(cb.Command, &base, events)
	for i := range events {
		e := &events[i]
		if e.To_Account == "" {
			elem := fmt.Sprintf("%s[%d]", listName(cb.Command), i)
			if listName(cb.Command) != "To_Account" {
				// An object; FollowDelete's list is the To_Account
				// strings themselves (imevent.Command.Scalar).
				elem += ".To_Account"
			}
			return decodeErr(ReasonPairs, "%s: %s is empty", cb.Command, elem)
		}
		e.PairIndex, e.PairCount = i, n
	}
	cb.Events = events
	return nil
}

func listName(cmd string) string {
	if l, ok := imevent.Lists[cmd]; ok {
		return l
	}
	return "PairList"
}
