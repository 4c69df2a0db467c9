package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is a job that will not be retried any more: it failed
// permanently, ran out of attempts, or could not run at all.
type DeadLetter struct {
	ID           string    `json:"id"`
	Rule         string    `json:"rule"`
	Action       string    `json:"action"`
	LastError    string    `json:"last_error"`
	Reason       string    `json:"reason"` // permanent failure, attempts exhausted, unknown action, invalid parameters, action panicked, undecodable message
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	DeadAt       time.Time `json:"dead_at"`
	Job          Job       `json:"job"`
	Raw          []byte    `json:"raw,omitempty"` // the message body, for undecodable messages only
}

// bury moves job to the dead letters. Its Msg-Id makes a redelivered source
// message bury it only once.
func (q *Queue) bury(seq uint64, job Job, reason string) bool {
	if len(job.Event) > 0 && !json.Valid(job.Event) {
		// Job messages carry events unchecked, dead letters are JSON: an
		// event that is not JSON is kept as a JSON string, or the dead
		// letter could never be written and its message would loop.
		job.Event, _ = json.Marshal(string(job.Event))
	}
	dl := DeadLetter{
		ID: job.ID, Rule: job.Rule, Action: job.Action,
		LastError: job.LastError, Reason: reason, Attempts: job.Attempt,
		FirstAttempt: job.FirstAttempt, LastAttempt: job.LastAttempt,
		DeadAt: q.now(), Job: job,
	}
	if err := q.publishDead(dl, fmt.Sprintf("d:%d:%s", seq, job.ID)); err != nil {
		q.log.Error("cannot dead-letter job; its message goes back to the queue", "job_id", job.ID, "err", err)
		return false
	}
	return true
}

// poison dead-letters a message that cannot be decoded, so it neither blocks
// nor loops; its body is kept for inspection.
func (q *Queue) poison(d *delivery, cause error) verdict {
	seq := d.seq
	id := "undecodable-" + strconv.FormatUint(seq, 10)
	q.log.Error("undecodable job message", "seq", seq, "subject", d.subject, "err", cause)
	dl := DeadLetter{ID: id, LastError: cause.Error(), Reason: "undecodable message", DeadAt: q.now(), Raw: d.data}
	if err := q.publishDead(dl, "d:"+id); err != nil {
		q.log.Error("cannot dead-letter undecodable message", "seq", seq, "err", err)
		return vRelease
	}
	return vAck
}

func (q *Queue) publishDead(dl DeadLetter, msgID string) error {
	data, err := json.Marshal(&dl)
	if err != nil {
		return fmt.Errorf("encode dead letter %s: %w", dl.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	_, err = q.publish(ctx, &nats.Msg{Subject: q.names.deadSubject(dl.ID), Data: data}, msgID)
	return err
}

// deadEntry is a dead letter with its stream sequence. A walk with a
// filter decodes whole only the dead letters it picks: of the others,
// picked is false and dl holds the fields a filter reads.
type deadEntry struct {
	seq    uint64
	dl     DeadLetter
	picked bool
}

// deadHead is the part of a dead letter a DeadFilter reads. Decoding it
// alone skips the job (its event and parameters, most of the bytes and
// of the allocations) of the dead letters a filter leaves out: a replay
// of one rule's quarter of 100 000 walks all of them, and what it
// allocates sets how often the collector runs, and with it how often the
// embedded server reloads the store blocks it dropped.
type deadHead struct {
	Rule      string    `json:"rule"`
	Action    string    `json:"action"`
	LastError string    `json:"last_error"`
	DeadAt    time.Time `json:"dead_at"`
}

// pickDeadEntry decodes the dead letter raw holds if f picks it (whole, with
// picked set), or only what f reads if not.
func (q *Queue) pickDeadEntry(raw *jetstream.RawStreamMsg, f DeadFilter) deadEntry {
	if !f.IsZero() {
		var h deadHead
		if json.Unmarshal(raw.Data, &h) == nil {
			dl := DeadLetter{Rule: h.Rule, Action: h.Action, LastError: h.LastError, DeadAt: h.DeadAt}
			if !f.match(&dl) {
				return deadEntry{seq: raw.Sequence, dl: dl}
			}
		}
	}
	e := q.decodeDead(raw)
	e.picked = f.match(&e.dl)
	return e
}

func (q *Queue) decodeDead(raw *jetstream.RawStreamMsg) deadEntry {
	e := deadEntry{seq: raw.Sequence}
	if err := json.Unmarshal(raw.Data, &e.dl); err != nil {
		e.dl = DeadLetter{
			ID:        strings.TrimPrefix(raw.Subject, q.names.deadPrefix),
			LastError: "undecodable dead letter: " + err.Error(),
			Raw:       raw.Data,
		}
	}
	return e
}

// DeadLetters lists every dead letter, oldest first, in memory: for tests
// and small stores; answers to people page with ListDead.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	entries, err := q.scanDead(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(entries))
	for i, e := range entries {
		out[i] = e.dl
	}
	return out, nil
}

// scanDead reads every dead letter into memory: for DeadLetters only
// (ListDead pages, ReplayWhere and DropWhere stream).
func (q *Queue) scanDead(ctx context.Context) ([]deadEntry, error) {
	var out []deadEntry
	err := q.readDead(ctx, 1, DeadFilter{}, func(e deadEntry) (bool, error) {
		out = append(out, e)
		return true, nil
	})
	if errors.Is(err, errDeadExhausted) {
		err = nil
	}
	return out, err
}

// UnknownIDsError names the ids a Replay or Drop was given that are not
// dead letters; it replayed or dropped nothing.
type UnknownIDsError struct{ IDs []string }

func (e *UnknownIDsError) Error() string {
	q := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		q[i] = strconv.Quote(id)
	}
	if len(q) == 1 {
		return "no dead letter with id " + q[0]
	}
	return "no dead letters with ids " + strings.Join(q, ", ")
}

// pickDead returns the dead letters with the given ids, or an *UnknownIDsError naming those not in the store.
func (q *Queue) pickDead(ctx context.Context, ids []string) ([]deadEntry, error) {
	out := make([]deadEntry, 0, len(ids))
	var unknown []string
	for _, id := range ids {
		raw, err := q.dead.GetLastMsgForSubject(ctx, q.names.deadSubject(id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("queue: dead letter %s: %w", id, err)
		}
		out = append(out, q.decodeDead(raw))
	}
	if unknown != nil {
		return nil, &UnknownIDsError{IDs: unknown}
	}
	return out, nil
}

// DeadLetter returns the dead letter with the given id, for people to read:
// the values of secret parameters (those the action kind declares secret)
// read "<redacted>". An unknown id is an *UnknownIDsError.
func (q *Queue) DeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	entries, err := q.pickDead(ctx, []string{id})
	if err != nil {
		return DeadLetter{}, err
	}
	dl := entries[0].dl
	dl.Raw = nil // an undecodable message's parameters cannot be told apart: not shown
	if kind, ok := q.registryLookup(dl.Job.Action); ok {
		dl.Job.Params = kind.Spec().Redact(dl.Job.Params)
	} else if dl.Job.Params != nil {
		// Without the kind's declaration nothing tells which values are
		// secret: show none.
		dl.Job.Params = map[string]any{"<hidden>": "unknown action kind " + strconv.Quote(dl.Job.Action) + ": parameters not shown"}
	}
	return dl, nil
}

// deleteDead removes one dead letter. Another replica removing it first is
// not an error: deleted is then false. Either way the removal is friendflow's,
// not a limit's (deadWatch).
func (q *Queue) deleteDead(ctx context.Context, seq uint64) (deleted bool, err error) {
	q.deadWatch.removing(1)
	err = q.dead.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if _, gerr := q.dead.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	q.deadWatch.removing(-1)
	return false, err
}

// Replay re-enqueues the dead letters with the given ids (all when ids is
// nil; an empty non-nil slice replays nothing), each in a message of its
// own, with attempts, attempt times and errors reset, and removes them
// from the dead letters. It returns how many were replayed. Given an id
// that is not a dead letter, it replays nothing and returns an
// *UnknownIDsError naming it. An undecodable
// message is replayed as it was if this release can read it (see
// replayRaw); others cannot be replayed: Drop them.
func (q *Queue) Replay(ctx context.Context, ids []string) (int, error) {
	if ids == nil {
		res, err := q.ReplayWhere(ctx, DeadSweep{})
		return res.N, err
	}
	entries, err := q.pickDead(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		replay := q.replayOne
		if e.dl.Job.ID == "" {
			replay = q.replayRaw
		}
		replayed, err := replay(ctx, e)
		if err != nil {
			return n, err
		}
		if replayed {
			n++
		}
	}
	return n, nil
}

// replayOne re-enqueues one dead letter's job afresh and removes the dead
// letter; false when another replica replayed it first.
func (q *Queue) replayOne(ctx context.Context, e deadEntry) (bool, error) {
	job := e.dl.Job
	// An operator's replay makes the requests the job held back as
	// possibly made (actions.Ledger).
	if err := q.releaseJob(ctx, job.ID); err != nil {
		return false, fmt.Errorf("queue: replay %s: %w", job.ID, err)
	}
	job.Attempt = 0
	job.Due, job.FirstAttempt, job.LastAttempt = time.Time{}, time.Time{}, time.Time{}
	job.LastError, job.Errors = "", nil
	msg, err := q.jobMsg(job)
	if err != nil {
		return false, fmt.Errorf("queue: replay %s: %w", job.ID, err)
	}
	at := q.now() // before the job can run again
	// The id names this dead letter, not the job: a job that dies again
	// after a replay is a new dead letter and can be replayed again
	// within the duplicate window, while two replicas replaying the
	// same dead letter store it once.
	ack, err := q.publish(ctx, msg, fmt.Sprintf("p:%d:%s", e.seq, job.ID))
	if err != nil {
		return false, fmt.Errorf("queue: replay %s: %w", job.ID, err)
	}
	// Published first, deleted second: a failure in between leaves a
	// dead letter that was also replayed, never a job that is neither.
	// Not found is fine: another replica deleted it, or the replayed
	// job already died again and replaced it.
	if _, err := q.deleteDead(ctx, e.seq); err != nil {
		return false, fmt.Errorf("queue: replay %s: remove dead letter: %w", job.ID, err)
	}
	if h := q.cfg.Hooks.Replayed; h != nil && !ack.Duplicate {
		h(&job, at)
	}
	return !ack.Duplicate, nil
}

// replayRaw stores an undecodable message again, unchanged, if this
// release decodes it: during a rolling upgrade of a cluster, a replica of
// the previous release dead-letters the messages a newer one wrote in a
// format it does not know, and they are replayed once the upgrade is done.
func (q *Queue) replayRaw(ctx context.Context, e deadEntry) (bool, error) {
	jobs, err := decodeJobs(e.dl.Raw)
	if err != nil {
		return false, nil
	}
	msg := &nats.Msg{Subject: q.names.batchPrefix + strconv.Itoa(len(jobs)), Data: e.dl.Raw}
	ack, err := q.publish(ctx, msg, fmt.Sprintf("p:%d:%s", e.seq, e.dl.ID))
	if err != nil {
		return false, fmt.Errorf("queue: replay %s: %w", e.dl.ID, err)
	}
	if _, err := q.deleteDead(ctx, e.seq); err != nil {
		return false, fmt.Errorf("queue: replay %s: remove dead letter: %w", e.dl.ID, err)
	}
	return !ack.Duplicate, nil
}

// Drop deletes the dead letters with the given ids (all when ids is nil; an
// empty non-nil slice drops nothing) and returns how many it deleted. Given
// an id that is not a dead letter, it drops nothing and returns an
// *UnknownIDsError naming it.
func (q *Queue) Drop(ctx context.Context, ids []string) (int, error) {
	if ids == nil {
		info, err := q.dead.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("queue: drop dead letters: %w", err)
		}
		if info.State.Msgs == 0 {
			return 0, nil
		}
		// Up to the last one seen: a job dying meanwhile is not dropped
		// unseen.
		q.deadWatch.removing(int64(info.State.Msgs))
		if err := q.dead.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq+1)); err != nil {
			q.deadWatch.removing(-int64(info.State.Msgs))
			return 0, fmt.Errorf("queue: drop dead letters: %w", err)
		}
		return int(info.State.Msgs), nil
	}
	entries, err := q.pickDead(ctx, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		deleted, err := q.deleteDead(ctx, e.seq)
		if err != nil {
			return n, fmt.Errorf("queue: drop %s: %w", e.dl.ID, err)
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// Stats describe the queue at one moment.
type Stats struct {
	// Jobs stored and not finished: waiting, delayed, retrying or running.
	Jobs int
	// Messages holding them: one per callback, one per job waiting on its own.
	Messages int
	// InFlight messages were delivered and are not acknowledged yet: being
	// worked on, buffered for a worker, or waiting for their due time.
	InFlight int
	// OldestWait is how long the oldest message that no worker has taken
	// yet has been waiting since it was stored or became due: 0 while the
	// workers keep up.
	OldestWait time.Duration
	// DeadLetters is the number of dead letters.
	DeadLetters int
	// DeadDiscarded is how many dead letters the limits (DeadMaxAge,
	// DeadMaxBytes) discarded since Open: a counter.
	DeadDiscarded int
	// OnceKeys and OnceBytes are the once keys stored in the buckets this
	// process has used, and their size; each bucket holds at most
	// Config.OnceMaxBytes.
	OnceKeys  int
	OnceBytes int64
}

// Stats returns the queue depth, how far behind the workers are, and the
// number of dead letters.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	n := q.names
	info, err := q.jobs.Info(ctx, jetstream.WithSubjectFilter(n.jobsSubjects))
	if err != nil {
		return s, fmt.Errorf("queue: stats: %w", err)
	}
	s.Messages = int(info.State.Msgs)
	for subj, c := range info.State.Subjects {
		switch {
		case subj == n.one:
			s.Jobs += int(c)
		case strings.HasPrefix(subj, n.batchPrefix):
			if k, err := strconv.Atoi(subj[len(n.batchPrefix):]); err == nil {
				s.Jobs += k * int(c)
			}
		}
	}
	held, err := q.heldStats(ctx, &s)
	if err != nil {
		return s, fmt.Errorf("queue: stats: %w", err)
	}
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("queue: stats: %w", err)
	}
	s.InFlight = ci.NumAckPending
	if s.Messages > 0 {
		// Messages are delivered in stream order, so the first one after
		// the last delivered is the oldest that no worker has taken. (The
		// consumer's NumPending is not consulted: it is updated
		// asynchronously and can lag a message just stored.)
		raw, err := q.jobs.GetMsg(ctx, ci.Delivered.Stream+1, jetstream.WithGetMsgSubject(n.jobsSubjects))
		if err == nil {
			since := raw.Time
			if due := dueHeader(raw.Header); due.After(since) {
				since = due
			}
			if now := q.now(); now.After(since) {
				s.OldestWait = max(s.OldestWait, now.Sub(since))
			}
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return s, fmt.Errorf("queue: stats: %w", err)
		}
	}
	s.Messages += held
	dinfo, err := q.dead.Info(ctx)
	if err != nil {
		return s, fmt.Errorf("queue: stats: %w", err)
	}
	s.DeadLetters = int(dinfo.State.Msgs)
	s.DeadDiscarded = q.deadWatch.observe(dinfo.State)
	if s.OnceKeys, s.OnceBytes, err = q.onceStats(ctx); err != nil {
		return s, fmt.Errorf("queue: stats: %w", err)
	}
	return s, nil
}

// deadWatch finds out how many dead letters the stream's limits (MaxAge,
// MaxBytes) discarded. JetStream announces no such discard (no advisory;
// its delete markers cover MaxAge only, and are messages in the stream), but
// its state tells how many messages ever left the stream: every sequence
// up to LastSeq was a dead letter, Msgs of them are left, so LastSeq-Msgs
// were removed. Removals by this queue (replay, drop) are counted as they
// are made; the rest went under the limits. It counts from the first
// look after Open; with several replicas sharing the stream, a replica
// also counts as discards the dead letters another replica's replay or
// drop removed (docs/operations.md says so).
type deadWatch struct {
	mu       sync.Mutex
	looked   bool
	base     uint64 // removals not made by this queue, at the first look
	own      int64  // removals made by this queue
	reported uint64 // discards reported so far (the counter)
}

// removing records n dead letters this queue is removing: before the
// removal, so that a look in between does not take it for a discard; a
// failed removal takes it back (negative n).
func (w *deadWatch) removing(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.own += n
}

// observe returns the discards since the first call, from the dead
// stream's state; it never decreases.
func (w *deadWatch) observe(s jetstream.StreamState) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gone uint64
	if s.LastSeq > s.Msgs {
		gone = s.LastSeq - s.Msgs
	}
	other := uint64(0)
	if own := uint64(max(w.own, 0)); gone > own {
		other = gone - own
	}
	if !w.looked {
		w.looked, w.base = true, other
	}
	// Never back: a look that raced a removal of ours may have counted
	// it before it was recorded.
	w.reported = max(w.reported, other-min(other, w.base))
	return int(w.reported)
}
