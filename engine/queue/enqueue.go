package queue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Enqueue stores all of one callback's jobs and returns after the server
// has acknowledged them: all the jobs are stored, or none. Concurrent
// callbacks are stored together (group commit): while one publish waits for
// its acknowledgement the next callbacks gather, and go into ONE message,
// so the cost of a durable write is shared instead of paid per callback.
// A message holds whole callbacks only, so each callback's jobs are still
// stored together or not at all. The Msg-Id is derived from the message's
// callbacks (groupMsgID), so a publish whose outcome was unknown (timeout,
// failover) is retried without storing anything twice. Transient failures
// are retried for up to 10 s. Once handed to a committer, the callback's
// outcome is waited for even if ctx ends, so a callback is never reported
// failed while its jobs were in fact stored. Every job needs an ID, unique
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
	if err := q.StoreError(); err != nil {
		// Known before trying: fail now, while the caller can still say so.
		return err
	}
	for i := range jobs {
		if jobs[i].ID == "" {
			return fmt.Errorf("queue: job %d of callback %s has no id", i, callbackID)
		}
	}
	// Encoded here, by the callback's own goroutine: the committer only
	// concatenates. The buffer is reused once the committer has answered,
	// or when it never got it.
	buf, _ := q.encodeBufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	l := q.layoutOf(jobs)
	data, err := l.callback(slices.Grow((*buf)[:0], callbackSize(callbackID, jobs)), callbackID, jobs)
	defer func() {
		if cap(data) <= maxPooledEncoding {
			*buf = data[:0]
			q.encodeBufs.Put(buf)
		}
	}()
	if err != nil {
		return fmt.Errorf("queue: encode jobs of callback %s: %w", callbackID, err)
	}
	c := &commit{callbackID: callbackID, data: data, jobs: len(jobs), layout: l, done: make(chan error, 1)}
	if max, advice := q.CallbackLimit(); len(c.data) > max {
		// Retrying cannot help, and splitting would break the callback's
		// all-or-nothing storage: say what to change.
		return &tooLargeError{fmt.Sprintf("queue: the %d jobs of callback %s take %d bytes, more than the %d a callback may store; %s",
			len(jobs), callbackID, len(c.data), max, advice)}
	}
	select {
	case q.commits <- c:
	case <-q.commitStop:
		return ErrStopped
	case <-ctx.Done():
		return fmt.Errorf("queue: enqueue callback %s: %w", callbackID, ctx.Err())
	}
	if err := <-c.done; err != nil {
		return fmt.Errorf("queue: enqueue callback %s: %w", callbackID, err)
	}
	if h := q.cfg.Hooks.Enqueued; h != nil {
		h(callbackID, len(jobs), c.duplicate)
	}
	return nil
}

// ErrCallbackTooLarge is the error of an Enqueue whose jobs are more than
// one callback may store (CallbackLimit): the callback's fault, not the
// store's, which is fine.
var ErrCallbackTooLarge = errors.New("queue: a callback's jobs are over the store's message limit")

// tooLargeError is an ErrCallbackTooLarge with what to change.
type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string        { return e.msg }
func (e *tooLargeError) Is(target error) bool { return target == ErrCallbackTooLarge }

// CallbackLimit is the most bytes one callback's jobs may take (they are
// stored in one message), and what an operator can do about a callback
// over it, which depends on where the store is: the embedded server's limit
// is this program's, a cluster's max_payload is the cluster's setting.
func (q *Queue) CallbackLimit() (bytes int, advice string) {
	bytes = int(q.nc.MaxPayload()) - groupHeaderRoom
	if q.ns != nil {
		return bytes, "the embedded store's limit is fixed: make the rules' templates render less"
	}
	return bytes, "raise max_payload on the NATS cluster, or make the rules' templates render less"
}

// groupHeaderRoom is room left in a message for the header of its group.
const groupHeaderRoom = 64

const (
	// With an external cluster two committers publish concurrently: one
	// network round trip per group would otherwise bound the callback
	// rate. The embedded server answers in-process, and one committer
	// makes groups twice as large, so each callback pays less of a
	// message's cost (measured: 69 -> 62 µs of CPU per callback in
	// bench/load.sh).
	externalCommitters = 2
	embeddedCommitters = 1
	// maxGroupBytes keeps a group well inside NATS's default 1 MB payload
	// limit; a callback larger than that travels alone.
	maxGroupBytes = 512 << 10
	// embeddedMaxPayload is the embedded server's message size limit.
	embeddedMaxPayload = 8 << 20
	maxGroupSize       = 256
	// maxPooledEncoding: a rare huge callback's buffer is not kept.
	maxPooledEncoding = 64 << 10
)

// commit is one callback waiting for its jobs to be stored.
type commit struct {
	callbackID string
	data       []byte // the callback's job records (format 2)
	jobs       int
	layout     layout // of data; a group holds one
	duplicate  bool
	done       chan error
}

// commitLoop stores callbacks in groups: it takes one, adds whatever else
// is already waiting (never waiting for more: no latency is added), and
// publishes them as one message. It exits after Stop, having answered
// every callback it took.
func (q *Queue) commitLoop() {
	defer q.committers.Done()
	var (
		carry *commit
		group []*commit
		// buf holds a group's message. It is reused: the client has copied
		// it out by the time its publish returns.
		buf []byte
	)
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-q.commits:
			case <-q.commitStop:
				return
			}
		}
		group = append(group[:0], first)
		size := len(first.data)
	gather:
		for len(group) < maxGroupSize {
			select {
			case c := <-q.commits:
				if size+len(c.data) > maxGroupBytes || c.layout != first.layout {
					carry = c
					break gather
				}
				group = append(group, c)
				size += len(c.data)
			default:
				break gather
			}
		}
		buf = q.publishGroup(group, buf[:0])
		clear(group) // answered: let them go
		if cap(buf) > 2*maxGroupBytes {
			buf = nil // a huge lone callback's
		}
	}
}

// publishGroup stores a group of callbacks in one message built in buf,
// answers them, and returns buf for reuse.
func (q *Queue) publishGroup(group []*commit, buf []byte) []byte {
	jobs, size := 0, 0
	for _, c := range group {
		jobs += c.jobs
		size += len(c.data)
	}
	data := group[0].layout.header(slices.Grow(buf, size+1+binary.MaxVarintLen64), jobs)
	for _, c := range group {
		data = append(data, c.data...)
	}
	// A store fault found while the publish waits (nats-server does not
	// answer a publish it could not write) interrupts it.
	st := q.store.Load()
	ctx, cancel := context.WithTimeout(st.ctx, defaultEnqueueTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: q.names.batchPrefix + strconv.Itoa(jobs), Data: data}
	token, held := q.heldFor(jobs)
	if held {
		// Run from memory once stored: the message must outlive buf.
		msg.Subject, msg.Data = q.held.log.prefix+strconv.Itoa(jobs), slices.Clone(data)
	}
	id := groupMsgID(group)
	ack, attempts, err := q.publishCounting(ctx, msg, id)
	if held {
		q.heldStored(token, jobs, msg.Data, id, ack, attempts > 1, err)
	}
	if err != nil && q.ns != nil && outOfResources(err) {
		q.faulted(err.Error()) // the watcher restarts JetStream once there is room
	}
	if serr := q.StoreError(); err != nil && serr != nil {
		err = serr
	}
	for _, c := range group {
		if err == nil {
			c.duplicate = ack.Duplicate
		}
		c.done <- err
	}
	return data
}

// groupMsgID is the Msg-Id of a group: "cb:<callback id>" for a callback
// alone (a publish retried, or the callback enqueued again, is stored
// once), and for several the first's id with a hash of them all. Every
// callback of a group must count: a group whose first callback had been
// stored before, alone or with others, is not that message, and the
// server would drop it, with the other callbacks answered as stored.
func groupMsgID(group []*commit) string {
	id := "cb:" + group[0].callbackID
	if len(group) == 1 {
		return id
	}
	h := fnv.New64a()
	for _, c := range group {
		h.Write([]byte(c.callbackID))
		h.Write([]byte{0})
	}
	return id + "+" + strconv.FormatUint(h.Sum64(), 36)
}

// publish stores msg with the given Msg-Id, retrying transient failures
// until ctx is done. A duplicate (the same id stored within the window)
// counts as success: that is what the id is for.
func (q *Queue) publish(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	ack, _, err := q.publishCounting(ctx, msg, msgID)
	return ack, err
}

// publishCounting is publish, also returning how many attempts it made.
func (q *Queue) publishCounting(ctx context.Context, msg *nats.Msg, msgID string) (*jetstream.PubAck, int, error) {
	var (
		ack      *jetstream.PubAck
		attempts int
	)
	err := retrying(ctx, q.log, "publish", func(ctx context.Context) error {
		var err error
		attempts++
		ack, err = q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
		return err
	})
	return ack, attempts, err
}

// callbackSize is about the size of a callback's encoding, so that it is
// made without growing its buffer.
func callbackSize(callbackID string, jobs []Job) int {
	n := 0
	for i := range jobs {
		n += jobSize(&jobs[i]) + len(callbackID)
		if i == 0 || len(jobs[i].Event) != len(jobs[i-1].Event) {
			n += len(jobs[i].Event)
		}
	}
	return n
}

// jobSize is about the size of a job's record without its event.
func jobSize(j *Job) int {
	return 48 + len(j.ID) + len(j.Rule) + len(j.Action) + len(j.CallbackID) + len(j.OnceKey) + len(j.LastError) + len(j.TraceParent) + 32*len(j.Params)
}

// jobMsg is a message holding job alone. A job due later carries its due
// time in a header, for the consumer to wait without decoding.
func (q *Queue) jobMsg(job Job) (*nats.Msg, error) {
	l := q.layout()
	if job.Cancel != nil {
		l = formatV4
	}
	data, err := l.job(l.header(make([]byte, 0, jobSize(&job)+len(job.Event)+2), 1), &job, nil)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	msg := &nats.Msg{Subject: q.names.one, Data: data, Header: nats.Header{}}
	if job.Due.After(q.now()) {
		msg.Header.Set(hdrDue, strconv.FormatInt(job.Due.UnixNano(), 10))
	}
	if len(job.Errors) > 0 {
		h, err := json.Marshal(job.Errors)
		if err != nil {
			return nil, fmt.Errorf("encode errors of job %s: %w", job.ID, err)
		}
		msg.Header.Set(hdrErrors, string(h))
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
