package im

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// MaxContent is IM's message size limit: 8000 bytes of text, or of a
// custom element's data, desc, ext and sound together.
const MaxContent = 8000

// MaxPush is the most bytes push's title, text and ext may have together.
// IM delivers the push through APNs, whose payload is at most 4 KB, and
// Tencent's message format page asks to keep the push text (Desc) and Ext
// under about 3 KB together
// (https://cloud.tencent.com/document/product/269/2720). It gives no
// per-field limit; the title travels in the same payload, so it counts too.
const MaxPush = 3072

// MaxMsgLifetime is the longest offline retention IM accepts.
const MaxMsgLifetime = 7 * 24 * time.Hour

// SendPath is the API path of one C2C message.
const SendPath = "openim/sendmsg"

// Send is the im.send kind: one C2C message through openim/sendmsg.
type Send struct {
	c *Client
}

// NewSend returns the im.send kind. c may be nil when IM is not configured:
// the Spec still serves lint, test and explain, and Do fails permanently.
func NewSend(c *Client) *Send { return &Send{c: c} }

var sendSpec = actions.Spec{
	Name: "im.send",
	Doc: "Sends a one-to-one message through the IM REST API (openim/sendmsg) as the admin account, " +
		"or as `from`. A retried job, and the job of a replayed callback, is the same message to IM (MsgRandom " +
		"and MsgSeq derive from the delivery id: the event's content, the rule and the action), so IM's " +
		"120-second dedup absorbs repeats. Requests keep to --im-rate.",
	Params:   actions.ParamsOf[SendParams](),
	Validate: validateSend,
	Rendered: renderedSend,
}

// renderedSend checks, before the callback is answered, the limits a
// rendered message can pass: IM's message size and the push payload's.
func renderedSend(p map[string]any) error {
	if n, path := contentSize(p); n > MaxContent {
		return &actions.ParamError{Path: path, Msg: fmt.Sprintf("%d bytes is more than IM's %d-byte message limit", n, MaxContent)}
	}
	if n := pushSize(p); n > MaxPush {
		return &actions.ParamError{Path: "push", Msg: fmt.Sprintf("title, text and ext have %d bytes together, more than the %d a push notification carries", n, MaxPush)}
	}
	return nil
}

// Spec implements actions.Kind.
func (s *Send) Spec() actions.Spec { return sendSpec }

// SendParams are an im.send job's parameters.
type SendParams struct {
	To string
	Message
	NoCallbacks bool
}

// DeclareParams implements actions.Declarer.
func (p *SendParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.To, actions.Param{Name: "to", Example: `"${ From_Account }"`, Required: true, Doc: "the receiver's UserID (To_Account)"})
	p.Message.declare(d, &p.NoCallbacks)
}

// Message is the message im.send and im.batch_send send: their parameters
// but the receivers and, for im.send, no_callbacks.
type Message struct {
	From             string // empty: the admin account
	Text             string // empty: Custom is set
	Custom           *SendCustom
	SyncOtherMachine bool
	CloudCustomData  string
	MsgLifetime      any // nil: IM's default; see lifetime
	NoUnread         bool
	NoLastMsg        bool
	Push             *SendPush
	// MuteNotifications sends no offline push at all (PushFlag 1).
	MuteNotifications bool
}

// declare declares m's parameters, and no_callbacks in its place when
// noCallbacks holds it (batchsendmsg triggers no callback to forbid).
func (m *Message) declare(d *actions.Decl, noCallbacks *bool) {
	d.Param(&m.From, actions.Param{Name: "from", Example: `welcome_bot`, Doc: "the UserID to send as (From_Account); absent or empty: the admin account"})
	d.Param(&m.Text, actions.Param{Name: "text", Example: `"Hi ${ From_Account }, welcome!"`, Doc: fmt.Sprintf("a text message (TIMTextElem), at most %d bytes; exactly one of text and custom", MaxContent)})
	d.Param(&m.Custom, actions.Param{Name: "custom", Example: `{data: '{"kind":"welcome"}', desc: Welcome!}`, Doc: "a custom message (TIMCustomElem); exactly one of text and custom"})
	d.Param(&m.SyncOtherMachine, actions.Param{Name: "sync_other_machine", Example: `true`, Default: false, Doc: "also show the message on the sender's own devices (SyncOtherMachine 1; false sends 2)"})
	d.Param(&m.CloudCustomData, actions.Param{Name: "cloud_custom_data", Example: `'{"rule":"welcome-v1"}'`, Doc: "custom data stored with the message and delivered to the receiver (CloudCustomData)"})
	d.Param(&m.MsgLifetime, actions.Param{Name: "msg_lifetime", Example: `24h`, Doc: "how long IM keeps the message for an offline receiver: a duration (\"24h\") or whole seconds; 0 = online only; at most 7 days (IM's default)"})
	if noCallbacks != nil {
		d.Param(noCallbacks, actions.Param{Name: "no_callbacks", Example: `false`, Default: true, Doc: "keep the message from triggering the app's own C2C before/after-send callbacks (ForbidCallbackControl)"})
	}
	d.Param(&m.NoUnread, actions.Param{Name: "no_unread", Example: `true`, Default: false, Doc: "do not count the message as unread (SendMsgControl NoUnread)"})
	d.Param(&m.NoLastMsg, actions.Param{Name: "no_last_msg", Example: `true`, Default: false, Doc: "do not move the conversation up the receiver's list (SendMsgControl NoLastMsg)"})
	d.Param(&m.Push, actions.Param{Name: "push", Example: `{title: New friend, text: "Say hi to ${ From_Account }"}`,
		Doc: fmt.Sprintf("the push notification a receiver whose app is offline gets (OfflinePushInfo): title, text and ext, at most %d bytes together; without it IM pushes the message's own text", MaxPush)})
	d.Param(&m.MuteNotifications, actions.Param{Name: "mute_notifications", Example: `true`, Default: false,
		Doc: "send no offline push notification at all (OfflinePushInfo.PushFlag 1); not with push"})
}

// SendCustom is the messages' custom parameter: a TIMCustomElem.
type SendCustom struct {
	Data  string
	Desc  string
	Ext   string
	Sound string
}

// DeclareParams implements actions.Declarer.
func (c *SendCustom) DeclareParams(d *actions.Decl) {
	d.Param(&c.Data, actions.Param{Name: "data", Example: `'{"kind":"welcome"}'`, Required: true, Doc: "the payload, not shown in push notifications"})
	d.Param(&c.Desc, actions.Param{Name: "desc", Example: `Welcome!`, Doc: "push notification text; without it (or push.text) there is no offline push"})
	d.Param(&c.Ext, actions.Param{Name: "ext", Example: `'{"k":1}'`, Doc: "APNs ext field"})
	d.Param(&c.Sound, actions.Param{Name: "sound", Example: `ding.caf`, Doc: "APNs sound"})
}

// SendPush is the messages' push parameter: OfflinePushInfo's Title, Desc
// and Ext.
type SendPush struct {
	Title string
	Text  string
	Ext   string
}

// DeclareParams implements actions.Declarer.
func (o *SendPush) DeclareParams(d *actions.Decl) {
	d.Param(&o.Title, actions.Param{Name: "title", Example: `New friend`, Doc: "the notification's title, on iOS and Android (Title)"})
	d.Param(&o.Text, actions.Param{Name: "text", Example: `Say hi to your new friend`, Doc: "the notification's text, instead of the message's own (Desc)"})
	d.Param(&o.Ext, actions.Param{Name: "ext", Example: `'{"screen":"chat"}'`,
		Doc: "data passed through to the app (Ext): JSON, as Tencent asks, or some Android vendors' pushes do not arrive"})
}

// validateSend checks what the types cannot; it skips Deferred values.
func validateSend(p map[string]any) error {
	if to, ok := p["to"].(string); ok && to == "" {
		return &actions.ParamError{Path: "to", Msg: "must not be empty"}
	}
	_, hasText := p["text"]
	_, hasCustom := p["custom"]
	switch {
	case hasText && hasCustom:
		return &actions.ParamError{Path: "custom", Msg: "give either text or custom, not both"}
	case !hasText && !hasCustom:
		return &actions.ParamError{Path: "text", Msg: "one of text and custom is required"}
	}
	if t, ok := p["text"].(string); ok && t == "" {
		return &actions.ParamError{Path: "text", Msg: "must not be empty"}
	}
	if err := renderedSend(p); err != nil {
		return err
	}
	if err := validatePush(p); err != nil {
		return err
	}
	if v, ok := p["msg_lifetime"]; ok && !actions.HasDeferred(v) {
		if _, err := lifetime(v); err != nil {
			return &actions.ParamError{Path: "msg_lifetime", Msg: err.Error()}
		}
	}
	return nil
}

// validatePush checks push beyond its size: not with mute_notifications,
// and an ext given as a literal is JSON.
func validatePush(p map[string]any) error {
	push, ok := p["push"].(map[string]any)
	if !ok {
		return nil
	}
	if mute, _ := p["mute_notifications"].(bool); mute {
		return &actions.ParamError{Path: "mute_notifications", Msg: "true sends no push notification; give either push or mute_notifications, not both"}
	}
	// Tencent: "please make sure Ext is JSON", else some Android vendors'
	// pushes may not arrive (https://cloud.tencent.com/document/product/269/2720).
	if ext, ok := push["ext"].(string); ok && ext != "" && !json.Valid([]byte(ext)) {
		return &actions.ParamError{Path: "push.ext", Msg: "must be JSON (Tencent's push channels expect it)"}
	}
	return nil
}

// pushSize is the bytes of push's title, text and ext together.
func pushSize(p map[string]any) int {
	push, ok := p["push"].(map[string]any)
	if !ok {
		return 0
	}
	n := 0
	for _, k := range []string{"title", "text", "ext"} {
		if s, ok := push[k].(string); ok {
			n += len(s)
		}
	}
	return n
}

// contentSize is the message size IM limits, and the parameter to blame.
func contentSize(p map[string]any) (int, string) {
	if t, ok := p["text"].(string); ok {
		return len(t), "text"
	}
	c, ok := p["custom"].(map[string]any)
	if !ok {
		return 0, ""
	}
	n := 0
	for _, k := range []string{"data", "desc", "ext", "sound"} {
		if s, ok := c[k].(string); ok {
			n += len(s)
		}
	}
	return n, "custom"
}

// lifetime converts msg_lifetime to whole seconds.
func lifetime(v any) (int64, error) {
	var d time.Duration
	switch x := v.(type) {
	case time.Duration:
		d = x
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return secondsInRange(n)
		}
		pd, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 24h, or whole seconds)", x)
		}
		d = pd
	case int:
		return secondsInRange(int64(x))
	case int64:
		return secondsInRange(x)
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("%v is not a whole number of seconds", x)
		}
		return secondsInRange(int64(x))
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return 0, fmt.Errorf("%v is not a whole number of seconds", x)
		}
		return secondsInRange(n)
	default:
		return 0, fmt.Errorf("want a duration or seconds, got %T", v)
	}
	if d < 0 || d > MaxMsgLifetime {
		return 0, fmt.Errorf("%v is outside 0 to 7 days", d)
	}
	return int64(d / time.Second), nil
}

func secondsInRange(n int64) (int64, error) {
	if n < 0 || n > int64(MaxMsgLifetime/time.Second) {
		return 0, fmt.Errorf("%d seconds is outside 0 to 604800 (7 days)", n)
	}
	return n, nil
}

// sendMsg is the request body of openim/sendmsg
// (https://www.tencentcloud.com/document/product/1047/34919).
type sendMsg struct {
	SyncOtherMachine      int          `json:"SyncOtherMachine"`
	FromAccount           string       `json:"From_Account,omitempty"`
	ToAccount             string       `json:"To_Account"`
	MsgLifeTime           *int64       `json:"MsgLifeTime,omitempty"`
	MsgSeq                uint32       `json:"MsgSeq"`
	MsgRandom             uint32       `json:"MsgRandom"`
	ForbidCallbackControl []string     `json:"ForbidCallbackControl,omitempty"`
	SendMsgControl        []string     `json:"SendMsgControl,omitempty"`
	MsgBody               []msgElem    `json:"MsgBody"`
	CloudCustomData       string       `json:"CloudCustomData,omitempty"`
	OfflinePushInfo       *offlinePush `json:"OfflinePushInfo,omitempty"`
}

type msgElem struct {
	MsgType    string `json:"MsgType"`
	MsgContent any    `json:"MsgContent"`
}

type textContent struct {
	Text string `json:"Text"`
}

type customContent struct {
	Data  string `json:"Data"`
	Desc  string `json:"Desc,omitempty"`
	Ext   string `json:"Ext,omitempty"`
	Sound string `json:"Sound,omitempty"`
}

type offlinePush struct {
	PushFlag int    `json:"PushFlag"` // 0: push
	Title    string `json:"Title,omitempty"`
	Desc     string `json:"Desc,omitempty"`
	Ext      string `json:"Ext,omitempty"`
}

type sendMsgResponse struct {
	MsgTime int64  `json:"MsgTime"`
	MsgKey  string `json:"MsgKey"`
}

// MsgIDs derives the MsgRandom and MsgSeq of a job's message from its
// delivery id (actions.Job.DeliveryID): two independent 31-bit values of
// sha256(id), never 0 (IM fills in a MsgSeq of its own when it is absent).
// Every attempt of a job, and the job of every copy of its callback,
// therefore sends the same message as far as IM's dedup is concerned,
// while the ids of different jobs collide with odds of 2⁻⁶².
func MsgIDs(deliveryID string) (msgRandom, msgSeq uint32) {
	h := sha256.Sum256([]byte(deliveryID))
	positive := func(b []byte) uint32 {
		if v := binary.BigEndian.Uint32(b) & 0x7fffffff; v != 0 {
			return v
		}
		return 1
	}
	return positive(h[0:4]), positive(h[4:8])
}

// Do implements actions.Kind.
func (s *Send) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	if s.c == nil {
		return notConfigured("im.send")
	}
	if job.ID == "" {
		// Without an id every message would share one dedup key.
		return actions.Permanent(errors.New("im.send: job has no id"))
	}
	p, err := actions.Decode[SendParams](sendSpec, params)
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.send: %w", err))
	}
	body, err := buildSendMsg(job.DeliveryID(), p)
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.send: %w", err))
	}
	var resp sendMsgResponse
	if err := s.c.Call(ctx, SendPath, body, &resp); err != nil {
		return fmt.Errorf("im.send to %s: %w", body.ToAccount, err)
	}
	s.c.log.LogAttrs(ctx, slog.LevelDebug, "im.send: sent", slog.String("job_id", job.ID),
		slog.String("to", body.ToAccount), slog.String("msg_key", resp.MsgKey))
	return nil
}

// buildSendMsg turns decoded params into the request body.
func buildSendMsg(deliveryID string, p SendParams) (*sendMsg, error) {
	m := &sendMsg{
		SyncOtherMachine: 2,
		ToAccount:        p.To,
		FromAccount:      p.From,
		CloudCustomData:  p.CloudCustomData,
		MsgBody:          []msgElem{msgBody(p)},
		OfflinePushInfo:  offlinePushInfo(p.Push, p.MuteNotifications),
	}
	m.MsgRandom, m.MsgSeq = MsgIDs(deliveryID)
	if p.SyncOtherMachine {
		m.SyncOtherMachine = 1
	}
	if p.NoCallbacks {
		m.ForbidCallbackControl = []string{"ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"}
	}
	if p.NoUnread {
		m.SendMsgControl = append(m.SendMsgControl, "NoUnread")
	}
	if p.NoLastMsg {
		m.SendMsgControl = append(m.SendMsgControl, "NoLastMsg")
	}
	if p.MsgLifetime != nil {
		n, err := lifetime(p.MsgLifetime)
		if err != nil {
			return nil, fmt.Errorf("msg_lifetime: %w", err)
		}
		m.MsgLifeTime = &n
	}
	return m, nil
}

// msgBody is the message: custom when given, text otherwise (Validate
// requires exactly one of them).
func msgBody(p SendParams) msgElem {
	if c := p.Custom; c != nil {
		return msgElem{MsgType: "TIMCustomElem", MsgContent: customContent{Data: c.Data, Desc: c.Desc, Ext: c.Ext, Sound: c.Sound}}
	}
	return msgElem{MsgType: "TIMTextElem", MsgContent: textContent{Text: p.Text}}
}

// offlinePushInfo is OfflinePushInfo: PushFlag 1 when muted, the push's
// fields when given, else nil (IM's default push, from the message).
func offlinePushInfo(op *SendPush, mute bool) *offlinePush {
	switch {
	case mute:
		return &offlinePush{PushFlag: 1}
	case op == nil || *op == (SendPush{}):
		return nil
	}
	return &offlinePush{Title: op.Title, Desc: op.Text, Ext: op.Ext}
}

// notConfigured is the failure of a job of kind run without a Client.
func notConfigured(kind string) error {
	return actions.Permanent(errors.New(kind + ": IM is not configured (--im-secret-key, --sdkappid)"))
}
