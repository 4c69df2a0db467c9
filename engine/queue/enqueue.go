package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// envelope is the body of every message on the jobs stream: the jobs of one
// callback, or a single job in a message of its own.
type envelope struct {
	V    int   `json:"v"`
	Jobs []Job `json:"jobs"`
}

const envelopeVersion = 1

func decodeEnvelope(data []byte) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("undecodable job message: %w", err)
	}
	if env.V != envelopeVersion {
		return env, fmt.Errorf("job message format version %d, want %d", env.V, envelopeVersion)
	}
	if len(env.Jobs) == 0 {
		return env, errors.New("job message holds no jobs")
	}
	return env, nil
}

// Enqueue stores all of one callback's jobs in one message and returns after
// the server has acknowledged it: all the jobs are stored, or none. The
// Msg-Id is derived from callbackID, so repeating an Enqueue whose outcome
// was unknown (timeout, failover) stores nothing twice within two minutes.
// Transient failures are retried until ctx is done (10 s when ctx has no
// deadline). Jobs due in the future are stored like the others and split
// out by a worker into messages of their own. Every job needs an ID, unique
// per job; jobs' CallbackID is set to callbackID and Attempt starts at 0.
func (q *Queue) Enqueue(ctx context.Context, callbackID string, jobs []Job) error {
	if len(jobs) == 0 {
		return nil
	}
	if callbackID == "" {
		return errors.New("queue: empty callback id")
	}
	if q.closed.Load() {
		return ErrStopped
	}
	env := envelope{V: envelopeVersion, Jobs: make([]Job, len(jobs))}
	for i := range jobs {
		if jobs[i].ID == "" {
			return fmt.Errorf("queue: job %d of callback %s has no id", i, callbackID)
		}
		env.Jobs[i] = jobs[i]
		env.Jobs[i].CallbackID = callbackID
		env.Jobs[i].Attempt = 0
	}
	data, err := json.Marshal(&env)
	if err != nil {
		return fmt.Errorf("queue: encode jobs of callback %s: %w", callbackID, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultEnqueueTimeout)
		defer cancel()
	}
	msg := &nats.Msg{Subject: subjBatchPrefix + strconv.Itoa(len(jobs)), Data: data}
	ack, err := q.publish(ctx, msg, "cb:"+callbackID)
	if err != nil {
		return fmt.Errorf("queue: enqueue callback %s: %w", callbackID, err)
	}
	if h := q.cfg.Hooks.Enqueued; h != nil {
		h(callbackID, len(jobs), ack.Duplicate)
	}
	return nil
}

// publish stores msg with the given Msg-Id, retrying transient failures
// until ctx is done. A duplicate (the same id stored within the window)
// counts as success: that is what the id is for.
func (q *Queue) publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	var ack *jetstream.PubAck
	err := retrying(ctx, q.log, "publish", func(ctx context.Context) error {
		var err error
		ack, err = q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
		return err
	})
	return ack, err
}

// jobMsg is a message holding job alone. A job due later carries its due
// time in a header, for the consumer to wait without decoding.
func (q *Queue) jobMsg(job Job) (*nats.Msg, error) {
	data, err := json.Marshal(&envelope{V: envelopeVersion, Jobs: []Job{job}})
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	msg := &nats.Msg{Subject: subjOne, Data: data, Header: nats.Header{}}
	if job.Due.After(q.now()) {
		msg.Header.Set(hdrDue, strconv.FormatInt(job.Due.UnixNano(), 10))
	}
	return msg, nil
}

// dueHeader returns the due time a message carries, or the zero time.
func dueHeader(h nats.Header) time.Time {
	v := h.Get(hdrDue)
	if v == "" {
		return time.Time{}
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// deadSubject is the dead-letter subject of a job id. Base64url keeps any
// id a single valid subject token, and is reversible for debugging.
func deadSubject(id string) string {
	return subjDeadPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}
