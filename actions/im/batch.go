package im

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/friendflow/friendflow/actions"
)

// MaxBatchRecipients is how many recipients one openim/batchsendmsg
// request may name (https://www.tencentcloud.com/document/product/1047/34920).
const MaxBatchRecipients = 500

// MaxBatchJob bounds the recipients of one im.batch_send job: one minute of
// the API's default recipients budget, so a job finishes well inside the
// workers' job timeout.
const MaxBatchJob = DefaultBatchRecipients

// BatchSend is the im.batch_send kind: one message to a list of users
// through openim/batchsendmsg.
type BatchSend struct {
	c *Client
}

// NewBatchSend returns the im.batch_send kind; c may be nil, as for NewSend.
func NewBatchSend(c *Client) *BatchSend { return &BatchSend{c: c} }

var batchSendSpec = actions.Spec{
	Name: "im.batch_send",
	Doc: "Sends one message to a list of users through the IM REST API (openim/batchsendmsg), at most " +
		"500 recipients per request (longer lists are split). Recipients that IM reports failed in " +
		"`ErrorList` are retried alone, with the same MsgRandom and MsgSeq, so IM's dedup holds; those " +
		"that cannot succeed (70107: no such account) are reported and dropped, and a job left with only " +
		"them goes to the dead letters naming them. Requests keep to the API's own rate budget and to " +
		"its recipients per minute (--im-batch-recipients).",
	Params:   actions.ParamsOf[BatchSendParams](),
	Validate: validateSend,
}

// Spec implements actions.Kind.
func (b *BatchSend) Spec() actions.Spec { return batchSendSpec }

// BatchSendParams are an im.batch_send job's parameters: im.send's, with
// `to` a list and without no_callbacks.
type BatchSendParams struct {
	To []string
	Message
}

// DeclareParams implements actions.Declarer.
func (p *BatchSendParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.To, actions.Param{Name: "to", Required: true, MinItems: 1, MaxItems: MaxBatchJob, Example: "[admin_anna, admin_bo]",
		Doc: fmt.Sprintf("the receivers' UserIDs (To_Account), sent %d per request", MaxBatchRecipients)})
	p.Message.declare(d, nil)
}

// message is the one message every recipient gets, as im.send builds it.
func (p BatchSendParams) message() SendParams {
	return SendParams{Message: p.Message}
}

// batchSendMsg is the request body of openim/batchsendmsg: sendmsg's
// fields with To_Account a list, and no ForbidCallbackControl.
type batchSendMsg struct {
	SyncOtherMachine int          `json:"SyncOtherMachine"`
	FromAccount      string       `json:"From_Account,omitempty"`
	ToAccount        []string     `json:"To_Account"`
	MsgLifeTime      *int64       `json:"MsgLifeTime,omitempty"`
	MsgSeq           uint32       `json:"MsgSeq"`
	MsgRandom        uint32       `json:"MsgRandom"`
	SendMsgControl   []string     `json:"SendMsgControl,omitempty"`
	MsgBody          []msgElem    `json:"MsgBody"`
	CloudCustomData  string       `json:"CloudCustomData,omitempty"`
	OfflinePushInfo  *offlinePush `json:"OfflinePushInfo,omitempty"`
}

type batchSendResponse struct {
	ActionStatus string `json:"ActionStatus"`
	MsgKey       string `json:"MsgKey"`
	ErrorList    []struct {
		ToAccount string `json:"To_Account"`
		ErrorCode int    `json:"ErrorCode"`
	} `json:"ErrorList"`
}

// batchOutcome collects the recipients of a job by what became of them.
type batchOutcome struct {
	retry  []string // failed transiently: the next attempt's list
	failed []string // failed permanently: reported, not retried
	codes  map[string]int
}

// Do implements actions.Kind. Each attempt sends to the recipients its
// params name; when some fail, the error carries params naming only those
// to retry (actions.WithRemaining), which the queue stores with the job,
// so an attempt never sends again to a recipient that IM accepted, however
// long after the 120-second dedup window it runs.
func (b *BatchSend) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	if b.c == nil {
		return notConfigured("im.batch_send")
	}
	if job.ID == "" {
		return actions.Permanent(errors.New("im.batch_send: job has no id"))
	}
	p, err := actions.Decode[BatchSendParams](batchSendSpec, params)
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.batch_send: %w", err))
	}
	one, err := buildSendMsg(job.ID, p.message())
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.batch_send: %w", err))
	}
	to := uniq(p.To)
	out := batchOutcome{codes: map[string]int{}}
	for i := 0; i < len(to); i += MaxBatchRecipients {
		chunk := to[i:min(i+MaxBatchRecipients, len(to))]
		if err := b.send(ctx, one, chunk, &out); err != nil {
			// This chunk and those after it were not sent; retrying
			// them (or burying them) is the whole chunk's error class.
			rest := append(out.retry, to[i:]...)
			b.reportFailed(ctx, job, &out)
			return actions.WithRemaining(fmt.Errorf("im.batch_send: %d of %d recipients not sent: %w", len(rest), len(to), err), withList(job.Params, "to", rest))
		}
	}
	b.reportFailed(ctx, job, &out)
	switch {
	case len(out.retry) > 0:
		return actions.WithRemaining(actions.Transient(fmt.Errorf("im.batch_send: %d of %d recipients failed, retrying them: %s%s",
			len(out.retry), len(to), accountCodes(out.retry, out.codes), failedNote(&out)), 0), withList(job.Params, "to", out.retry))
	case len(out.failed) > 0:
		return actions.WithRemaining(actions.Permanent(fmt.Errorf("im.batch_send: %d of %d recipients cannot be sent to: %s",
			len(out.failed), len(to), accountCodes(out.failed, out.codes))), withList(job.Params, "to", out.failed))
	}
	return nil
}

// send sends one request and sorts its recipients' results into out. An
// error means the request as a whole failed: none of chunk was sent.
func (b *BatchSend) send(ctx context.Context, one *sendMsg, chunk []string, out *batchOutcome) error {
	if err := b.c.waitRecipients(ctx, len(chunk)); err != nil {
		return actions.Transient(err, 0)
	}
	body := &batchSendMsg{
		SyncOtherMachine: one.SyncOtherMachine, FromAccount: one.FromAccount, ToAccount: chunk,
		MsgLifeTime: one.MsgLifeTime, MsgSeq: one.MsgSeq, MsgRandom: one.MsgRandom,
		SendMsgControl: one.SendMsgControl, MsgBody: one.MsgBody, CloudCustomData: one.CloudCustomData,
		OfflinePushInfo: one.OfflinePushInfo,
	}
	var resp batchSendResponse
	err := b.c.Call(ctx, BatchSendPath, body, &resp)
	var apiErr *Error
	if err != nil && !(errors.As(err, &apiErr) && len(resp.ErrorList) > 0) {
		return err
	}
	// OK, SomeError, or a FAIL that lists each recipient's error.
	listed := make(map[string]bool, len(resp.ErrorList))
	for _, e := range resp.ErrorList {
		listed[e.ToAccount] = true
		out.codes[e.ToAccount] = e.ErrorCode
		if permanent, _ := actions.Classify(classify(&Error{Code: e.ErrorCode})); permanent {
			out.failed = append(out.failed, e.ToAccount)
		} else {
			out.retry = append(out.retry, e.ToAccount)
		}
	}
	if err != nil {
		// A FAIL whose list leaves some recipients out: their fate is
		// unknown, and the same MsgRandom makes a retry safe for them.
		for _, a := range chunk {
			if !listed[a] {
				out.retry = append(out.retry, a)
			}
		}
	}
	return nil
}

func (b *BatchSend) reportFailed(ctx context.Context, job actions.Job, out *batchOutcome) {
	for _, a := range out.failed {
		b.c.log.LogAttrs(ctx, slog.LevelWarn, "im.batch_send: recipient cannot be sent to",
			slog.String("job_id", job.ID), slog.String("rule", job.Rule),
			slog.String("to", a), slog.Int("code", out.codes[a]))
	}
}

func failedNote(out *batchOutcome) string {
	if len(out.failed) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d cannot be sent to and are dropped: %s", len(out.failed), accountCodes(out.failed, out.codes))
}

// accountCodes lists accounts with their error codes, the first ten.
func accountCodes(accounts []string, codes map[string]int) string {
	var b strings.Builder
	for i, a := range accounts {
		if i == 10 {
			fmt.Fprintf(&b, ", … (%d more)", len(accounts)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d)", a, codes[a])
	}
	return b.String()
}

// uniq drops repeated accounts, keeping the first of each.
func uniq(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, a := range list {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// withList returns a copy of params with key set to list: the params of
// the job's remaining work.
func withList(params map[string]any, key string, list []string) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = v
	}
	out[key] = append([]string(nil), list...)
	return out
}
