package im

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
		"500 recipients per request (longer lists are split, each part sent whatever became of the others). " +
		"Each recipient's outcome is its own: those IM reports failed transiently are retried alone; " +
		"those that cannot succeed (70107, 90012: no such account) go to a dead letter of their own naming " +
		"each with its code; a request IM did not answer is not sent again (IM documents no dedup for " +
		"batchsendmsg), its recipients dead-lettered as possibly sent. Requests keep to the API's own " +
		"rate budget and to its recipients per minute (--im-batch-recipients).",
	Params:   actions.ParamsOf[BatchSendParams](),
	Validate: validateSend,
	Rendered: renderedSend,
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

// Do implements actions.Kind. Each attempt sends to the recipients its
// params name, every chunk of them, and sorts each recipient by IM's
// answer (see send): done, retried, or failed for good. The error names
// the ones to retry as the job's remaining params and those failed for
// good as its abandoned part (a dead letter of its own), so no attempt
// sends again to a recipient that IM accepted: the batch page documents no
// dedup window for batchsendmsg (https://cloud.tencent.com/document/product/269/1612;
// sendmsg's 120 s window is documented for sendmsg alone).
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
	one, err := buildSendMsg(job.DeliveryID(), p.message())
	if err != nil {
		return actions.Permanent(fmt.Errorf("im.batch_send: %w", err))
	}
	to := uniq(p.To)
	out := newAccounts()
	for i := 0; i < len(to); i += MaxBatchRecipients {
		chunk := to[i:min(i+MaxBatchRecipients, len(to))]
		if !b.claimAndSend(ctx, job.ID, one, chunk, out) {
			// IM (or the way to it) asked for a pause: the chunks
			// not sent yet go to the next attempt, unsent.
			for _, a := range to[i+len(chunk):] {
				out.again(a, noAnswer, 0)
			}
			break
		}
	}
	out.report(ctx, b.c.log, "im.batch_send", job)
	return out.result(fmt.Sprintf("im.batch_send: recipients: %d sent", len(to)-len(out.retry)-len(out.failed)), job, "to", len(to))
}

// claimAndSend sends chunk through send, claimed in the queue's ledger
// (actions.Ledger) first: a chunk whose claim is taken was sent, or may
// have been, by an earlier run that stopped (a crash) before storing its
// progress, and IM documents no dedup for batchsendmsg, so it is not sent
// again: its recipients are reported, for an operator to check and replay
// (a replay gives the job's claims up). A claim is given up at once only
// when IM surely sent to nobody.
func (b *BatchSend) claimAndSend(ctx context.Context, jobID string, one *sendMsg, chunk []string, out *accounts) bool {
	l := actions.LedgerFrom(ctx)
	if l == nil {
		ok, _ := b.send(ctx, one, chunk, out)
		return ok
	}
	key := chunkKey(chunk)
	first, err := l.Claim(ctx, jobID, key)
	if err != nil {
		out.byError(chunk, actions.Transient(fmt.Errorf("%w: claiming the request: %w", ErrNotSent, err), 0))
		return false
	}
	if !first {
		for _, a := range chunk {
			out.fail(a, noAnswer, "an earlier run sent this request, or may have, before it stopped: not resent")
		}
		return true
	}
	ok, sent := b.send(ctx, one, chunk, out)
	if sent == sentNone {
		// Released without the job's context, which a stop may have
		// cancelled: nothing was sent, so a rerun may send.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.Release(rctx, jobID, key); err != nil {
			// The claim outlives its use: the next run reports these
			// recipients instead of sending (a replay sends).
			b.c.log.LogAttrs(ctx, slog.LevelWarn, "im.batch_send: releasing a request's claim failed", slog.String("err", err.Error()))
		}
	}
	return ok
}

// chunkKey names one request of a job: its recipients, in order.
func chunkKey(chunk []string) string {
	h := sha256.New()
	for _, a := range chunk {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// What a request did, as far as friendflow can tell.
type sentState int

const (
	sentNone  sentState = iota // IM surely sent to nobody
	sentSome                   // IM sent to some or all
	sentMaybe                  // no answer: IM may have sent
)

// send sends one request and sorts its recipients into out. ok is false
// when the request failed transiently as a whole: the next chunks should
// wait for the retry; sent is what the request did.
//
// The reply shapes (https://cloud.tencent.com/document/product/269/1612):
// OK without ErrorList, every recipient sent; SomeError (an older version
// of the page: FAIL) with ErrorList, the listed recipients failed with
// their codes and the others were sent; FAIL with a non-zero ErrorCode and
// no ErrorList, every recipient failed (ErrorCode is non-zero only when
// all failed), e.g. 90012 when none of them is registered.
func (b *BatchSend) send(ctx context.Context, one *sendMsg, chunk []string, out *accounts) (ok bool, sent sentState) {
	if err := b.c.waitRecipients(ctx, len(chunk)); err != nil {
		out.byError(chunk, actions.Transient(fmt.Errorf("%w: %w", ErrNotSent, err), 0))
		return false, sentNone
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
	// An IM envelope answered (not a proxy's page, not a gateway's status).
	answered := errors.As(err, &apiErr) && apiErr.HTTPStatus == 200 && resp.ActionStatus != ""
	switch {
	case err == nil || answered && len(resp.ErrorList) > 0:
		for _, e := range resp.ErrorList {
			out.byCode(e.ToAccount, e.ErrorCode)
		}
		if len(resp.ErrorList) < len(chunk) {
			return true, sentSome
		}
		return true, sentNone
	case answered:
		// Every recipient failed with the reply's code.
		for _, a := range chunk {
			out.byCode(a, apiErr.Code)
		}
		c, _ := Lookup(apiErr.Code)
		return c.Class != ClassTransient && c.Class != ClassRateLimited, sentNone
	case errors.Is(err, ErrNotSent):
		out.byError(chunk, err)
		return false, sentNone
	}
	if permanent, _ := actions.Classify(err); permanent {
		// An HTTP status IM's gateway would not retry: reported, and
		// the claim kept (a gateway's answer says nothing of IM).
		out.byError(chunk, err)
		return true, sentMaybe
	}
	// No answer (timeout, network, a gateway's error): IM may have sent
	// the message, and it documents no dedup for batchsendmsg that a
	// resend could count on, so the chunk is not sent again; each
	// recipient is reported, for an operator to check and replay.
	for _, a := range chunk {
		out.fail(a, noAnswer, "no answer from IM, may have been sent: not resent")
	}
	return false, sentMaybe
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
