package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
)

// cancel_on (docs/rules.md): an event of a command some rule cancels on
// leaves a marker for its pair in a key-value bucket of the namespace
// (MarkCancel, before the callback is answered); a job with a Cancel that
// falls due looks for a marker of its pair newer than itself and, finding
// one, is dropped instead of run (dropCancelled). The markers live in
// JetStream, so every replica sees them and a restart keeps them; jobs and
// events without cancel_on never touch the bucket.

// CancelMarkerTTL is how long a pair's marker is kept: longer than the
// longest delay an action with cancel_on may have (rules.MaxCancelDelay,
// 720h), with a day to spare for a job that waits longer than its delay
// (a backlog, retries).
const CancelMarkerTTL = 744 * time.Hour

// cancelCheckWait is how long a message waits when the markers of its
// jobs cannot be read: their jobs must not run unchecked.
const cancelCheckWait = 2 * time.Second

// Pair is the two accounts of an event, in either order.
type Pair struct{ From, To string }

// Cancelled is the err that Hooks.JobFinished gets for a job its
// cancel_on dropped: what cancelled it.
type Cancelled struct {
	Command    string    // the cancelling event's command
	At         time.Time // when that event was handled
	CallbackID string    // its callback; "" when unknown
}

func (c *Cancelled) Error() string {
	s := "cancelled by " + c.Command + " of the pair at " + c.At.UTC().Format(time.RFC3339Nano)
	if c.CallbackID != "" {
		s += " (callback " + c.CallbackID + ")"
	}
	return s
}

// layoutOf is the format of a callback's jobs: format 4 when one of them
// has cancel_on, else the queue's.
func (q *Queue) layoutOf(jobs []Job) layout {
	for i := range jobs {
		if jobs[i].Cancel != nil {
			return formatV4
		}
	}
	return q.layout()
}

// cancelKey is the marker key of cmd's events for the pair a, b in either
// order: the command, then a hash of the ordered pair (any account name
// becomes a valid key token).
func cancelKey(cmd, a, b string) string {
	if b < a {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	return cmd + "." + hex.EncodeToString(h.Sum(nil)[:16])
}

// cancelValue is a marker's value: when, and by which callback (clipped
// like a once key's).
func cancelValue(at time.Time, callbackID string) []byte {
	if len(callbackID) > maxOnceCallbackID {
		callbackID = callbackID[:maxOnceCallbackID]
	}
	v := strconv.AppendInt(make([]byte, 0, 24+len(callbackID)), at.UnixNano(), 10)
	v = append(v, ' ')
	return append(v, callbackID...)
}

func parseCancelValue(v []byte) (at time.Time, callbackID string, err error) {
	ns, id, _ := bytes.Cut(v, []byte{' '})
	n, err := strconv.ParseInt(string(ns), 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cancel marker %q: %w", v, err)
	}
	return time.Unix(0, n), string(id), nil
}

// cancelBucket returns the markers' bucket, creating it on first use;
// creation is idempotent, so replicas racing to create it all succeed.
func (q *Queue) cancelBucket(ctx context.Context) (*onceBucket, error) {
	if b := q.cancelB.Load(); b != nil {
		return b, nil
	}
	b := &onceBucket{name: q.names.cancelBucket}
	if err := retrying(ctx, q.log, "create cancel bucket", func(ctx context.Context) error {
		return q.createBucket(ctx, b, CancelMarkerTTL, "friendflow cancel_on markers (pairs whose pending actions are dropped), expiring after "+CancelMarkerTTL.String())
	}); err != nil {
		return nil, fmt.Errorf("queue: cancel bucket %s: %w", b.name, err)
	}
	q.cancelB.CompareAndSwap(nil, b)
	return q.cancelB.Load(), nil
}

// MarkCancel notes that an event of cmd happened at for each pair of
// callbackID: a job with cmd in its Cancel.On, made before at for one of
// these pairs (in either direction), is dropped when it falls due. It
// returns once the markers are stored (all published at once), so that a
// callback answered OK has them, like its jobs. The newest note of a pair
// wins.
func (q *Queue) MarkCancel(ctx context.Context, cmd string, pairs []Pair, at time.Time, callbackID string) error {
	if len(pairs) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultEnqueueTimeout)
		defer cancel()
	}
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := q.cancelBucket(ctx)
	if err != nil {
		return err
	}
	val := cancelValue(at, callbackID)
	prefix := "$KV." + b.name + "." // a key's subject (ADR-8)
	futs := make([]jetstream.PubAckFuture, len(pairs))
	for i, p := range pairs {
		// A failure here is retried synchronously below.
		futs[i], _ = q.js.PublishAsync(prefix+cancelKey(cmd, p.From, p.To), val)
	}
	for i, f := range futs {
		if f != nil {
			select {
			case <-f.Ok():
				continue
			case <-f.Err():
			case <-ctx.Done():
			}
		}
		p := pairs[i]
		if err := retrying(ctx, q.log, "cancel marker", func(ctx context.Context) error {
			_, err := b.kv.Put(ctx, cancelKey(cmd, p.From, p.To), val)
			return err
		}); err != nil {
			return fmt.Errorf("queue: cancel marker of %s: %w", cmd, err)
		}
	}
	return nil
}

// cancelledBy returns what cancels job, nil when nothing does: the newest
// marker of one of its Cancel.On commands for its pair made after the job.
func (q *Queue) cancelledBy(ctx context.Context, job *Job) (*Cancelled, error) {
	var pair struct{ From_Account, To_Account string }
	if err := json.Unmarshal(job.Event, &pair); err != nil {
		// No pair, nothing to match: the job runs as it would without.
		q.log.Warn("cancel_on: the job's event has no readable pair; it is not cancellable", "job_id", job.ID, "err", err)
		return nil, nil
	}
	b, err := q.cancelBucket(ctx)
	if err != nil {
		return nil, err
	}
	for _, cmd := range job.Cancel.On {
		e, err := b.kv.Get(ctx, cancelKey(cmd, pair.From_Account, pair.To_Account))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue
		case err != nil:
			return nil, fmt.Errorf("queue: cancel marker of %s: %w", cmd, err)
		}
		at, id, err := parseCancelValue(e.Value())
		if err != nil {
			q.log.Warn("cancel_on: unreadable marker; ignored", "job_id", job.ID, "err", err)
			continue
		}
		if at.After(job.Cancel.Created) {
			return &Cancelled{Command: cmd, At: at, CallbackID: id}, nil
		}
	}
	return nil, nil
}

// dropCancelled returns due without the jobs their cancel_on drops, each
// reported finished as cancelled. A job without a Cancel costs a nil
// check. When a marker cannot be read, nothing is dropped and err is set:
// the message must wait and come back, its jobs unrun.
func (q *Queue) dropCancelled(due []Job) ([]Job, error) {
	n := 0
	for i := range due {
		if due[i].Cancel != nil {
			n++
		}
	}
	if n == 0 {
		return due, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	by := make([]*Cancelled, len(due))
	for i := range due {
		if due[i].Cancel == nil {
			continue
		}
		if by[i], err = q.cancelledBy(ctx, &due[i]); err != nil {
			return nil, err
		}
	}
	kept := due[:0:0]
	for i := range due {
		if by[i] == nil {
			kept = append(kept, due[i])
			continue
		}
		q.cancelled(&due[i], by[i])
	}
	return kept, nil
}

// cancelled reports job as dropped by c: log, trace and hooks.
func (q *Queue) cancelled(job *Job, c *Cancelled) {
	q.log.LogAttrs(context.Background(), slog.LevelInfo, "job cancelled by a later event of its pair",
		slog.String("job_id", job.ID), slog.String("rule", job.Rule), slog.String("action", job.Action),
		slog.String("by", c.Command), slog.String("by_callback", c.CallbackID))
	if _, span := q.jobSpan(job); span != nil {
		span.SetAttributes(attribute.String("friendflow.job.outcome", OutcomeCancelled),
			attribute.String("friendflow.job.cancelled_by", c.Command))
		span.End()
	}
	if h := q.cfg.Hooks.JobFinished; h != nil {
		h(job, OutcomeCancelled, c, 0)
	}
}
