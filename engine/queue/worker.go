package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Run runs the worker pool until ctx is done or Stop is called, then stops
// fetching, lets the running jobs finish (Stop bounds how long), returns
// fetched but unstarted messages to the queue, and returns nil. It returns
// an error only when it cannot start. Run may be called once. After ctx is
// done the queue still accepts Enqueue (for callbacks still in flight);
// Stop closes it.
func (q *Queue) Run(ctx context.Context) error {
	if q.cfg.Registry == nil {
		return errors.New("queue: Run needs Config.Registry")
	}
	if !q.started.CompareAndSwap(false, true) {
		return errors.New("queue: Run called twice")
	}
	defer close(q.runDone)
	if q.isStopping() {
		return ErrStopped
	}

	in := &intake{work: make(chan jetstream.Msg)}
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() {
			k := &keeper{every: ackWait / 3}
			for {
				select {
				case m, ok := <-in.work:
					if !ok {
						return
					}
					q.process(m, k)
				case g := <-q.held.work:
					q.processHeld(g)
				}
			}
		})
	}
	cc, err := q.cons.Consume(func(m jetstream.Msg) { q.receive(m, in) },
		// A small client-side buffer: a fetched message's ack wait runs
		// while it waits there, before receive can extend it.
		jetstream.PullMaxMessages(max(q.cfg.Workers, 2)),
		// Short heartbeat and expiry: with the defaults, the failover of a
		// clustered stream's leader stalled the workers for about 30 s.
		jetstream.PullHeartbeat(time.Second),
		jetstream.PullExpiry(4*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				q.log.Debug("consumer heartbeat missed", "err", err)
				return
			}
			q.log.Warn("consumer", "err", err)
		}),
	)
	if err != nil {
		q.fast.Store(false) // held groups go to Stop's hand-over
		in.close()
		wg.Wait()
		return fmt.Errorf("queue: consume: %w", err)
	}
	q.log.Info("workers started", "workers", q.cfg.Workers)

	select {
	case <-ctx.Done():
	case <-q.stopping:
	}
	q.beginStop()
	q.fast.Store(false)
	// Drain hands the buffered messages to receive, which releases them.
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		cc.Stop()
	}
	in.close()
	wg.Wait()
	q.log.Info("workers stopped")
	return nil
}

// intake hands fetched messages to the workers. The lock makes "send unless
// closed" atomic with respect to close.
type intake struct {
	mu     sync.RWMutex
	closed bool
	work   chan jetstream.Msg
}

func (in *intake) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.closed {
		in.closed = true
		close(in.work)
	}
}

// receive is the consumer callback. A message of its own that is not yet
// due goes straight back with the remaining delay, without taking a worker;
// anything else waits for a free worker.
func (q *Queue) receive(m jetstream.Msg, in *intake) {
	if due := dueHeader(m.Headers()); !due.IsZero() {
		if d := due.Sub(q.now()); d > 0 {
			if err := m.NakWithDelay(d); err != nil {
				q.log.Warn("cannot postpone a delayed job", "err", err)
			}
			return
		}
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.closed {
		q.release(m)
		return
	}
	select {
	case in.work <- m:
		return
	default:
	}
	// Every worker is busy: keep the message's ack wait from running out
	// while it waits.
	t := time.NewTicker(ackWait / 3)
	defer t.Stop()
	for {
		select {
		case in.work <- m:
			return
		case <-q.stopping:
			q.release(m)
			return
		case <-t.C:
			_ = m.InProgress()
		}
	}
}

// verdict is what becomes of a message once its jobs were handled.
type verdict int

const (
	vAck     verdict = iota // every job done, dead-lettered or re-enqueued
	vRelease                // back to the queue now (stop, or a failed hand-off)
	vWait                   // back to the queue after a delay (not due yet)
)

func (q *Queue) process(m jetstream.Msg, k *keeper) {
	if q.isStopping() {
		q.release(m)
		return
	}
	k.start(m)
	v, delay := vRelease, time.Duration(0)
	if meta, err := m.Metadata(); err != nil {
		q.log.Error("message without JetStream metadata", "subject", m.Subject(), "err", err)
	} else {
		d := &delivery{seq: meta.Sequence.Stream, data: m.Data(), header: m.Headers(), subject: m.Subject(), delivered: meta.NumDelivered}
		v, delay = q.handle(d)
	}
	k.stop() // no InProgress may follow the final ack or nak
	switch v {
	case vAck:
		q.ack(m)
	case vRelease:
		q.release(m)
	case vWait:
		if err := m.NakWithDelay(delay); err != nil {
			q.log.Warn("cannot postpone a delayed job", "err", err)
		}
	}
}

// delivery is a message to handle: delivered by the consumer, or a held
// group run from memory.
type delivery struct {
	seq       uint64 // in its stream
	data      []byte
	header    nats.Header
	subject   string
	delivered uint64 // times delivered, this one included
	held      bool   // a held group: nothing waits here, in the stream
}

// handle runs a message's due jobs and hands off the others.
func (q *Queue) handle(d *delivery) (verdict, time.Duration) {
	seq := d.seq
	jobs, err := q.readJobs(d)
	if err != nil {
		return q.poison(d, err), 0
	}
	now := q.now()
	if wait := q.prefetchProfiles(seq, jobs, now, d.held); wait > 0 {
		return vWait, wait
	}
	// Jobs not due yet leave first, each into a message of its own, all
	// published at once; then the due ones run. A message of one job
	// waits in the stream instead, unless it is held.
	due := jobs
	if later := countLater(jobs, now); later > 0 {
		if len(jobs) == 1 && !d.held {
			return vWait, jobs[0].Due.Sub(now)
		}
		var wait []Job
		due, wait = splitDue(jobs, now, later)
		if !q.handOff(seq, "s", wait...) {
			return vRelease, 0
		}
	}
	if due, err = q.dropCancelled(due); err != nil {
		q.log.Warn("cannot read the cancel_on markers of due jobs; they wait", "err", err, "in", cancelCheckWait.String())
		return vWait, cancelCheckWait
	}
	rest, ok := q.conclude(seq, due, q.runAll(due))
	if !ok {
		return vRelease, 0
	}
	if len(rest) > 0 {
		if len(jobs) == 1 {
			return vRelease, 0
		}
		if !q.handOff(seq, "s", rest...) {
			return vRelease, 0
		}
	}
	return vAck, 0
}

// readJobs decodes a message's jobs with the error history its header
// holds, and reports a redelivery to the Redelivered hook.
func (q *Queue) readJobs(d *delivery) ([]Job, error) {
	jobs, err := decodeJobs(d.data)
	if err != nil {
		return nil, err
	}
	if d.header == nil {
		return jobs, nil // a held group: neither history nor redelivery
	}
	if h := d.header.Get(hdrErrors); h != "" && len(jobs) == 1 {
		if err := json.Unmarshal([]byte(h), &jobs[0].Errors); err != nil {
			// The history is for people; the job runs without it.
			q.log.Warn("unreadable error history of a job", "job_id", jobs[0].ID, "err", err)
			jobs[0].Errors = nil
		}
	}
	// A message postponed until its one job was due (vWait in handle)
	// comes back by design; only a delivery that was never acknowledged
	// is a redelivery. A message a takeover moved from a dead replica's
	// held subject may have run there.
	delivered := d.delivered
	if d.header.Get(hdrTaken) != "" {
		delivered++
	}
	waited := len(jobs) == 1 && !jobs[0].Due.IsZero()
	if h := q.cfg.Hooks.Redelivered; h != nil && delivered > 1 && dueHeader(d.header).IsZero() && !waited && !q.parks.parked(d.seq) {
		for i := range jobs {
			h(&jobs[i], delivered)
		}
	}
	return jobs, nil
}

// conclude hands off the retried jobs of b, buries the dead ones and
// records every finished one. It returns the jobs not started, or
// interrupted by Stop, as they were before; ok is false when a hand-off
// failed and the message must be released.
func (q *Queue) conclude(seq uint64, due []Job, b *batch) (rest []Job, ok bool) {
	for i := range b.runs {
		r, job := &b.runs[i], &due[i]
		if !r.started || r.res.outcome == outcomeInterrupted {
			if r.started {
				r.before.restore(job)
			}
			rest = append(rest, *job)
			continue
		}
		if !q.buryAbandoned(seq, r.res) {
			return nil, false
		}
		switch r.res.outcome {
		case OutcomeRetried:
			if !q.handOff(seq, "r", *job) {
				return nil, false
			}
		case OutcomeDead:
			if !q.bury(seq, *job, r.res.reason) {
				return nil, false
			}
		}
		q.finished(job, r.res)
	}
	return rest, true
}

func countLater(jobs []Job, now time.Time) int {
	n := 0
	for i := range jobs {
		if jobs[i].Due.After(now) {
			n++
		}
	}
	return n
}

// splitDue parts jobs into those due at now and the later ones, keeping
// their order.
func splitDue(jobs []Job, now time.Time, later int) (due, wait []Job) {
	due, wait = make([]Job, 0, len(jobs)-later), make([]Job, 0, later)
	for _, job := range jobs {
		if job.Due.After(now) {
			wait = append(wait, job)
		} else {
			due = append(due, job)
		}
	}
	return due, wait
}

// batch is the due jobs of one message, run side by side in the queue's
// Workers slots: a message can hold many callbacks (group commit), and
// running them one after another would leave the other workers idle and,
// after a crash, rerun a long tail of done jobs.
type batch struct {
	q    *Queue
	due  []Job
	runs []jobRun
	// units are the indexes of due that run together (an actions.Merger's
	// jobs with one key); nil when every job runs alone.
	units [][]int
	next  atomic.Int64 // the next job (or unit) to claim
	wg    sync.WaitGroup
}

// jobRun is one job's attempt. The job is updated in place; before is
// what the attempt changes, as it was, for a job that Stop interrupts.
type jobRun struct {
	res     runResult
	ctx     jobContext
	before  attemptState
	started bool
}

// attemptState is the part of a job that runJob changes.
type attemptState struct {
	attempt          int
	due, first, last time.Time
	lastError        string
	errors           []AttemptError
}

func (s *attemptState) save(j *Job) {
	*s = attemptState{j.Attempt, j.Due, j.FirstAttempt, j.LastAttempt, j.LastError, j.Errors}
}

func (s *attemptState) restore(j *Job) {
	j.Attempt, j.Due, j.FirstAttempt, j.LastAttempt, j.LastError, j.Errors = s.attempt, s.due, s.first, s.last, s.lastError, s.errors
}

// runAll runs due and returns their runs once all have returned. The
// message's worker takes a slot and runs jobs itself; a helper goroutine is
// started for a further free slot, and only while jobs are left to claim,
// so a message of one job costs no goroutine and helpers run many jobs
// each. A message waiting for its first slot gets the next one freed,
// before any helper. Jobs not started before Stop stay unstarted.
func (q *Queue) runAll(due []Job) *batch {
	b := &batch{q: q, due: due, runs: make([]jobRun, len(due)), units: q.mergeUnits(due)}
	select {
	case q.slots <- struct{}{}:
	case <-q.stopping:
		return b
	}
	b.work()
	b.wg.Wait()
	return b
}

// work claims and runs jobs until none is left or the queue stops, then
// gives its slot back.
func (b *batch) work() {
	defer func() { <-b.q.slots }()
	n := len(b.due)
	if b.units != nil {
		n = len(b.units)
	}
	for {
		i := int(b.next.Add(1) - 1)
		if i >= n || b.q.isStopping() {
			return
		}
		if i+1 < n {
			b.spread()
		}
		if b.units != nil && len(b.units[i]) > 1 {
			b.q.runMerged(b, b.units[i])
			continue
		}
		if b.units != nil {
			i = b.units[i][0]
		}
		r, job := &b.runs[i], &b.due[i]
		r.started = true
		r.before.save(job)
		r.res = b.q.runJob(job, &r.ctx)
	}
}

// spread starts a helper if a slot is free.
func (b *batch) spread() {
	select {
	case b.q.slots <- struct{}{}:
		b.wg.Go(b.work)
	default:
	}
}

// handOff stores each job in a message of its own, publishing them all
// before waiting for the acks. A Msg-Id joins the source message's
// sequence and the job id: a redelivered source re-publishes the same ids,
// which the server drops within the duplicate window.
func (q *Queue) handOff(seq uint64, tag string, jobs ...Job) bool {
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	type pending struct {
		msg *nats.Msg
		id  string
		ack jetstream.PubAckFuture
	}
	ps := make([]pending, len(jobs))
	for i, job := range jobs {
		msg, err := q.jobMsg(job)
		if err != nil {
			q.log.Error("cannot re-enqueue job; its message goes back to the queue", "job_id", job.ID, "err", err)
			return false
		}
		ps[i] = pending{msg: msg, id: fmt.Sprintf("%s:%d:%s", tag, seq, job.ID)}
		if len(jobs) > 1 {
			// A failure here is retried synchronously below.
			ps[i].ack, _ = q.js.PublishMsgAsync(msg, jetstream.WithMsgID(ps[i].id))
		}
	}
	for i, p := range ps {
		if p.ack != nil {
			select {
			case <-p.ack.Ok():
				continue
			case <-p.ack.Err():
			case <-ctx.Done():
			}
		}
		if _, err := q.publish(ctx, p.msg, p.id); err != nil {
			q.log.Error("cannot re-enqueue job; its message goes back to the queue", "job_id", jobs[i].ID, "err", err)
			return false
		}
	}
	return true
}

// outcomeInterrupted: Stop cancelled the action; the job is returned as it
// was before the attempt.
const outcomeInterrupted = "interrupted"

type runResult struct {
	outcome string
	err     error
	reason  string // for dead letters
	// abandoned is the part of the job that failed for good while the
	// rest goes on (actions.Failure.Abandoned): a dead letter of its own.
	abandoned *Job
	took      time.Duration
	delay     time.Duration // for retries
}

// runJob runs one attempt of job and updates its delivery state: attempt
// count and times, last error, and for a retry the due time.
func (q *Queue) runJob(job *Job, ctx *jobContext) runResult {
	t0 := q.begin(job)
	parent, span := q.jobSpan(job)
	ctx.init(parent, t0.Add(q.cfg.JobTimeout))
	reason, err := q.do(job, ctx)
	if span != nil {
		endJobSpan(span, err)
	}
	return q.settle(job, reason, err, t0)
}

// begin counts an attempt of job and returns its start.
func (q *Queue) begin(job *Job) (t0 time.Time) {
	t0 = time.Now()
	start := t0 // one reading of the clock where Config.Now is time.Now
	if q.ownClock {
		start = q.now()
	}
	job.Attempt++
	if job.FirstAttempt.IsZero() {
		job.FirstAttempt = start
	}
	job.LastAttempt = start
	return t0
}

// settle decides what becomes of job after an attempt that began at t0
// and ended with err (reason: see do).
func (q *Queue) settle(job *Job, reason string, err error, t0 time.Time) runResult {
	policy := job.Retry.WithDefaults()
	res := runResult{err: err, took: time.Since(t0)}
	if _, skipped := actions.Skipped(err); err == nil || skipped {
		job.LastError = ""
		res.outcome = OutcomeDone
		if skipped {
			res.outcome = OutcomeSkipped
		}
		return res
	}
	if q.jobCtx.Err() != nil {
		res.outcome = outcomeInterrupted
		return res
	}
	job.LastError = err.Error()
	job.Errors = appendError(job.Errors, AttemptError{Attempt: job.Attempt, At: job.LastAttempt, Error: job.LastError})
	if ab := actions.Abandoned(err); ab != nil {
		res.abandoned = abandonedPart(job, ab)
	}
	if rem := actions.Remaining(err); rem != nil {
		// The action did part of the job: what follows (the retry, or
		// the dead letter and its replay) covers only the rest.
		job.Params = rem
	}
	permanent, after := actions.Classify(err)
	switch {
	case reason != "":
		res.outcome, res.reason = OutcomeDead, reason
	case permanent:
		res.outcome, res.reason = OutcomeDead, "permanent failure"
	case job.Attempt >= policy.Attempts:
		res.outcome, res.reason = OutcomeDead, "attempts exhausted"
	default:
		res.outcome = OutcomeRetried
		res.delay = q.backoff(policy, job.Attempt, after)
		job.Due = q.now().Add(res.delay)
	}
	return res
}

// buryAbandoned dead-letters the abandoned part of a run, if it has one.
func (q *Queue) buryAbandoned(seq uint64, res runResult) bool {
	return res.abandoned == nil || q.bury(seq, *res.abandoned, "permanent failure")
}

// abandonedPart is the dead letter's job of the part of job that failed for
// good at this attempt: job's copy with params, its id job's with the
// attempt appended (dead letters are one per id; the attempt keeps parts
// dropped at different attempts apart, and a redelivered message writes
// the same one again).
func abandonedPart(job *Job, params map[string]any) *Job {
	a := *job
	a.ID = job.ID + "~" + strconv.Itoa(job.Attempt)
	a.Params = params
	a.Errors = slices.Clone(job.Errors)
	return &a
}

// appendError adds e to a job's error history, keeping the last maxErrors
// and at most maxErrorLen bytes of each: the history travels in a header.
func appendError(errs []AttemptError, e AttemptError) []AttemptError {
	if len(e.Error) > maxErrorLen {
		e.Error = strings.ToValidUTF8(e.Error[:maxErrorLen], "") + "…"
	}
	if len(errs) >= maxErrors {
		errs = slices.Clone(errs[len(errs)-maxErrors+1:])
	} else {
		errs = slices.Clip(errs) // never written into a slice an interrupted attempt restores
	}
	return append(errs, e)
}

// do runs the action. A non-empty reason means the job cannot run at all
// (unknown kind, invalid parameters): a dead letter without retries.
func (q *Queue) do(job *Job, ctx *jobContext) (reason string, err error) {
	kind, ok := q.registryLookup(job.Action)
	if !ok {
		return "unknown action", fmt.Errorf("unknown action kind %q", job.Action)
	}
	if reason, err := q.resolveProfiles(ctx, job); err != nil {
		return reason, err
	}
	params, err := kind.Spec().Check(job.Params)
	if err != nil {
		return "invalid parameters", fmt.Errorf("invalid parameters: %w", err)
	}
	defer ctx.cancel(context.Canceled)
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("action panicked", "job_id", job.ID, "action", job.Action, "panic", p, "stack", string(debug.Stack()))
			reason, err = "action panicked", fmt.Errorf("action panicked: %v", p)
		}
	}()
	return "", kind.Do(ctx, job.Job, params)
}

// backoff is full jitter: uniform in [0, min(max, backoff·2^(attempt-1))],
// and never less than the action's Retry-After, up to MaxBackoff: a
// server asking for a day (or for 292 years) must not park the job past its
// policy. The wait is one attempt like any other, so a job that is always
// told to wait still ends in the dead letters after Attempts runs.
func (q *Queue) backoff(p Retry, attempt int, retryAfter time.Duration) time.Duration {
	ceil := p.MaxBackoff
	if n := attempt - 1; n >= 0 && n < 63 && p.Backoff <= p.MaxBackoff>>n {
		ceil = p.Backoff << n
	}
	return max(time.Duration(q.rand()*float64(ceil)), min(retryAfter, p.MaxBackoff))
}

func (q *Queue) finished(job *Job, res runResult) {
	level, msg := slog.LevelDebug, "job done"
	switch res.outcome {
	case OutcomeRetried:
		level, msg = slog.LevelWarn, "job failed, will retry"
	case OutcomeDead:
		level, msg = slog.LevelError, "job dead-lettered"
	}
	// Built only for a line that is written: a job that succeeds quietly
	// must not pay for its log attributes.
	if q.log.Enabled(context.Background(), level) {
		attrs := []slog.Attr{slog.String("job_id", job.ID), slog.String("rule", job.Rule),
			slog.String("action", job.Action), slog.Int("attempt", job.Attempt)}
		switch res.outcome {
		case OutcomeDone:
			attrs = append(attrs, slog.String("took", res.took.String()))
		case OutcomeRetried:
			attrs = append(attrs, slog.Any("err", res.err), slog.String("in", res.delay.String()))
		case OutcomeDead:
			attrs = append(attrs, slog.Any("err", res.err), slog.String("reason", res.reason))
		}
		q.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
	if h := q.cfg.Hooks.JobFinished; h != nil {
		h(job, res.outcome, res.err, res.took)
	}
}

// ack acknowledges a handled message and waits for the server to confirm,
// retrying (an ack may be retried) until handoffTimeout. A lost ack would
// make the message come back after the ack wait and run its jobs again; a
// confirmed one cannot, even across a failover or a stop that follows.
func (q *Queue) ack(m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	if err := retrying(ctx, q.log, "ack", m.DoubleAck); err != nil {
		q.log.Warn("ack failed; the message will be redelivered and its jobs may run again", "err", err)
	}
}

// nakNow is a NAK whose redelivery time is "now": unlike a plain NAK, which
// only queues the message in the server's memory, a NAK with a delay is
// written to the consumer's store (and replicated), so a released message is
// redelivered right after a restart instead of after the ack wait.
var nakNow = []byte(`-NAK {"delay":1}`)

// release returns m to the queue for immediate redelivery and waits for the
// server to confirm, so that it holds across a shutdown that follows.
func (q *Queue) release(m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	if _, err := q.nc.RequestWithContext(ctx, m.Reply(), nakNow); err != nil {
		q.log.Warn("cannot return a message to the queue; it will be redelivered after the ack wait", "err", err)
	}
}

// keeper tells the server, every third of the ack wait, that the message a
// worker holds is still being worked on. A worker has one and re-arms it
// for each message: until a message is held for that long it costs a timer
// reset, not a goroutine.
type keeper struct {
	every time.Duration
	mu    sync.Mutex // held while signalling, so that stop waits for it
	msg   jetstream.Msg
	t     *time.Timer
}

func (k *keeper) start(m jetstream.Msg) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.msg = m
	if k.t == nil {
		k.t = time.AfterFunc(k.every, k.beat)
	} else {
		k.t.Reset(k.every)
	}
}

func (k *keeper) beat() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.msg == nil {
		return // stopped meanwhile
	}
	_ = k.msg.InProgress()
	k.t.Reset(k.every)
}

// stop returns once no signal for the message can be sent any more. A beat
// still due fires for nothing, or, if the next message was started
// meanwhile, early for that one.
func (k *keeper) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.msg = nil
	k.t.Stop()
}

func (q *Queue) registryLookup(kind string) (actions.Kind, bool) {
	if q.cfg.Registry == nil {
		return nil, false
	}
	return q.cfg.Registry.Lookup(kind)
}
