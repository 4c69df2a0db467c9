package record

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Defaults of Options.
const (
	// DefaultBuffer is how many events and job updates may wait for the
	// flusher; past it they are dropped (Options.Dropped), never waited
	// for: a reply does not wait for the record.
	DefaultBuffer = 16384
	// DefaultLinger spaces the writes: at 17 000 callbacks/s of 3 events,
	// a write every 50 ms is some 2 600 events in a dozen messages.
	DefaultLinger = 50 * time.Millisecond
	// flushTimeout bounds the wait for a batch's acknowledgements.
	flushTimeout = 10 * time.Second
)

// keptSets is how many recent rule sets the log keeps to derive the
// outcomes of the events they decided: the active one and the one before.
// Events decided by an older set show no derived outcomes.
const keptSets = 2

// Options configure a Log.
type Options struct {
	// Buffer bounds what waits to be written [DefaultBuffer].
	Buffer int
	// Linger is the least time between two writes [DefaultLinger].
	Linger time.Duration
	// Dropped counts events and job updates dropped because the buffer
	// was full or the store refused them (nil: not counted).
	Dropped func(n int)
	// Rules is the active rule set, used to derive the outcomes of events
	// whose set this process did not see decide (recorded by another
	// replica, or before a restart) when it has the same hash.
	Rules  func() *rules.Set
	Logger *slog.Logger
}

// item is a job update of callback cb waiting to be written.
type item struct {
	cb  string
	upd JobUpdate
}

// Log records events in the namespace's events stream (queue.Queue's
// ReadEvents, PublishEvent): the hot path copies what it keeps into a
// bounded buffer, and a goroutine writes the buffer in batches of async
// publishes. Every replica reads the whole deployment's events.
type Log struct {
	q    *queue.Queue
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu sync.Mutex
	// lines are the events waiting, encoded (codec.go), one a line;
	// events counts them.
	lines  []byte
	events int
	// fullSent says full was signalled for what lines hold.
	fullSent bool
	buf      []item // job updates waiting
	busy     bool   // the writer holds a batch not yet acknowledged
	idle     *sync.Cond
	qrecv    []byte // its receipt time, formatted
	qcb      []byte // the callback id being recorded, quoted
	// qhash is the hash of qset, quoted: quoted once per rule set.
	qhash []byte
	qset  *rules.Set
	// sets are the most recent rule sets that decided, newest first, at
	// most keptSets.
	sets []*rules.Set

	wake chan struct{}
	// full is signalled when a whole message of events (idsPerMsg)
	// waits: the writer then writes the events without waiting out the
	// linger, so that the buffer of encoded events stays about a
	// message's size instead of growing for a whole linger (at 50 000
	// events/s, 2.5 MB, twice: the buffer and the one being written;
	// both count in the process's peak memory).
	full chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns the log of q's events streams, and starts its writer; nil
// when q does not record (queue.Config.RecordEvents 0). Close it before
// stopping q.
func New(q *queue.Queue, o Options) *Log {
	if q == nil || !q.Recording() {
		return nil
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Linger <= 0 {
		o.Linger = DefaultLinger
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Log{q: q, opts: o, log: o.Logger.With("component", "record"), now: time.Now,
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	l.idle = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// Size is how many events the stream keeps.
func (l *Log) Size() int {
	if l == nil {
		return 0
	}
	n, _ := l.q.RecordLimits()
	return n
}

// Record implements engine.Recorder: it keeps every event of cb with what
// the engine made of it. It copies what it keeps: cb, matches and jobs
// are reused by the engine after it returns. It never waits for the
// store.
func (l *Log) Record(set *rules.Set, cb *imcallback.Callback, matches [][]rules.Match, errs [][]rules.RuleError, decisions []imcallback.ResultItem, jobs []queue.Job, skips []queue.OnceSkip, storeErr error) {
	received := cb.ReceivedAt
	if received.IsZero() {
		received = l.now()
	}
	var errText string
	if storeErr != nil {
		errText = storeErr.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep(set)
	if l.opts.Buffer-l.events < len(cb.Events) {
		l.dropped(len(cb.Events))
		return
	}
	// Each event is encoded at once into the buffer the writer takes:
	// no Event is built, nothing of cb is kept, and what its events
	// share is encoded once.
	l.qcb = imevent.AppendJSONString(l.qcb[:0], cb.ID)
	l.qrecv = received.AppendFormat(l.qrecv[:0], time.RFC3339Nano)
	x := line{qcb: l.qcb, qhash: l.quotedHash(set), callbackID: cb.ID, command: cb.Command, storeErr: errText,
		received: received, receivedText: l.qrecv}
	rest := jobs
	for i := range cb.Events {
		x.ev = &cb.Events[i]
		x.matches, x.errs, x.decision = nil, nil, nil
		if i < len(matches) {
			x.matches = matches[i]
		}
		if i < len(errs) {
			x.errs = errs[i]
		}
		if i < len(decisions) {
			x.decision = &decisions[i]
		}
		x.jobs, rest = splitJobs(rest, cb.ID, i)
		x.skips, skips = splitSkips(skips, i)
		l.lines = appendLine(l.lines, &x)
		l.lines = append(l.lines, '\n')
		l.events++
	}
	if !l.fullSent && (l.events >= idsPerMsg || len(l.lines) >= maxMsgBytes) {
		l.fullSent = true
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
	l.signal()
}

// quotedHash is set's hash as a JSON string. Callers hold mu.
func (l *Log) quotedHash(set *rules.Set) []byte {
	if set != l.qset || l.qhash == nil {
		hash := ""
		if set != nil {
			hash = set.Hash()
		}
		l.qset = set
		l.qhash = imevent.AppendJSONString(l.qhash[:0], hash)
	}
	return l.qhash
}

// signal wakes the writer. Callers hold mu.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Log) dropped(n int) {
	if l.opts.Dropped != nil {
		l.opts.Dropped(n)
	}
}

// keep makes set the newest of the kept sets. Callers hold mu.
func (l *Log) keep(set *rules.Set) {
	if set == nil || len(l.sets) > 0 && l.sets[0] == set {
		return
	}
	hash := set.Hash()
	l.sets = slices.DeleteFunc(l.sets, func(s *rules.Set) bool { return s.Hash() == hash })
	if len(l.sets) == keptSets {
		l.sets[len(l.sets)-1] = nil
		l.sets = l.sets[:len(l.sets)-1]
	}
	l.sets = slices.Insert(l.sets, 0, set)
}

// setOf returns the rule set of hash: a kept one, or the active one when
// it has that hash; nil otherwise.
func (l *Log) setOf(hash string) *rules.Set {
	l.mu.Lock()
	for _, s := range l.sets {
		if s.Hash() == hash {
			l.mu.Unlock()
			return s
		}
	}
	l.mu.Unlock()
	if l.opts.Rules != nil {
		if s := l.opts.Rules(); s != nil && s.Hash() == hash {
			return s
		}
	}
	return nil
}

// Hooks returns next with JobFinished and Replayed also recording, in the
// trace of the event that created the job, each attempt's outcome and
// each replay. log is called for each: the queue's hooks are set before
// the log, which needs the queue, exists; it may return nil.
func Hooks(next queue.Hooks, log func() *Log) queue.Hooks {
	prevDone, prevReplayed := next.JobFinished, next.Replayed
	next.JobFinished = func(job *queue.Job, outcome string, err error, took time.Duration) {
		if prevDone != nil {
			prevDone(job, outcome, err, took)
		}
		if outcome == queue.OutcomeRetried {
			outcome = JobRetrying
		}
		log().update(job, outcome, err, time.Time{})
	}
	next.Replayed = func(job *queue.Job, at time.Time) {
		if prevReplayed != nil {
			prevReplayed(job, at)
		}
		log().update(job, JobReplayed, nil, at)
	}
	return next
}

// update queues one job update for the trace, at at (zero: now).
func (l *Log) update(job *queue.Job, outcome string, err error, at time.Time) {
	if l == nil || job.CallbackID == "" || eventOfJob(job.ID, job.CallbackID) < 0 {
		return
	}
	if at.IsZero() {
		at = l.now()
	}
	u := JobUpdate{Job: job.ID, Outcome: outcome, Attempt: job.Attempt, At: at}
	if err != nil {
		u.Error = clip(err.Error(), 1024)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) >= l.opts.Buffer {
		l.dropped(1)
		return
	}
	l.buf = append(l.buf, item{cb: job.CallbackID, upd: u})
	l.signal()
}

// run is the writer: it takes what the buffer holds and writes it as a
// few messages of async publishes (codec.go), then waits for their
// acknowledgements. Job updates are taken at most every linger: each
// write sends one message per trace bucket they fall in, so their
// messages grow with the wait. Events are taken with them, or as soon as
// a whole message of them waits (full): waiting longer would not make
// their messages fewer, only the buffer larger.
func (l *Log) run() {
	defer close(l.done)
	var (
		w         writer
		lastTrace time.Time // when job updates were last taken
		pace      = time.NewTimer(0)
	)
	<-pace.C
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-l.stop:
			stopping = true
		}
		// Waiting lets the next batch grow: fewer, larger messages.
		early := false
		if wait := l.opts.Linger - time.Since(lastTrace); !stopping && wait > 0 {
			pace.Reset(wait)
			select {
			case <-pace.C:
			case <-l.full:
				early = true
			case <-l.stop:
				stopping = true
			}
			pace.Stop()
		}
		l.mu.Lock()
		if early {
			w.batch = w.batch[:0]
		} else {
			w.batch, l.buf = l.buf, w.batch[:0]
			lastTrace = time.Now()
		}
		l.takeLines(&w, early)
		l.busy = len(w.batch) > 0 || len(w.lines) > 0
		if len(l.buf) > 0 {
			l.signal() // the job updates left for the next round
		}
		l.mu.Unlock()
		w.write(l)
		l.mu.Lock()
		l.busy = false
		l.idle.Broadcast()
		l.mu.Unlock()
		if stopping {
			return
		}
	}
}

// takeLines hands the waiting events to w: all of them, or when early
// only the whole messages (msgEnd), so that writing early makes no more
// messages than waiting would; the rest waits in a fresh buffer.
// Callers hold mu.
func (l *Log) takeLines(w *writer, early bool) {
	cut, n := len(l.lines), l.events
	if early {
		cut, n = 0, 0
		for cut < len(l.lines) {
			end, k, whole := msgEnd(l.lines[cut:])
			if !whole {
				break
			}
			cut, n = cut+end, n+k
		}
	}
	w.lines, l.lines = l.lines[:cut], append(w.spare[:0], l.lines[cut:]...)
	l.events -= n
	l.fullSent = false
	select { // a signal for what was just taken
	case <-l.full:
	default:
	}
}

// msgEnd returns where the first message of lines ends (after its last
// line's newline), how many events it holds, and whether it is whole: it
// reached idsPerMsg events or maxMsgBytes; the rest of lines does not
// fill one.
func msgEnd(lines []byte) (end, n int, whole bool) {
	for n < idsPerMsg && end < len(lines) && end < maxMsgBytes {
		i := bytes.IndexByte(lines[end:], '\n')
		if i < 0 { // every line ends with one; never mind
			i = len(lines) - end - 1
		}
		end += i + 1
		n++
	}
	return end, n, n == idsPerMsg || end >= maxMsgBytes
}

// writer packs and publishes what it took; its buffers are reused.
type writer struct {
	batch   []item // job updates
	lines   []byte // events, one a line
	spare   []byte // the lines buffer to hand back
	packed  []byte // the messages as published (pack), one after another
	pending []queue.Pending
	buckets map[string][]byte
}

// write publishes what w took: the events as messages of up to
// idsPerMsg lines and maxMsgBytes, the job updates as one message per
// trace bucket, each packed (codec.go). A message's bytes are not touched until its publish is
// acknowledged: an async publish keeps them to send again.
func (w *writer) write(l *Log) {
	if len(w.batch) == 0 && len(w.lines) == 0 {
		w.spare = w.lines
		return
	}
	if w.buckets == nil {
		w.buckets = map[string][]byte{}
	}
	w.pending = w.pending[:0]
	unsent := 0
	for rest := w.lines; len(rest) > 0; {
		end, n, _ := msgEnd(rest)
		var at int
		w.packed, at = pack(w.packed, rest[:end-1])
		if p, err := l.q.PublishEvents(n, w.packed[at:]); err != nil {
			unsent += n
		} else {
			w.pending = append(w.pending, p)
		}
		rest = rest[end:]
	}
	for i := range w.batch {
		it := &w.batch[i]
		k := bucketOf(it.cb)
		b := w.buckets[k]
		if len(b) > 0 {
			b = append(b, '\n')
		}
		w.buckets[k] = appendTrace(b, it.cb, &it.upd)
	}
	for k, b := range w.buckets {
		if len(b) == 0 {
			continue
		}
		var at int
		w.packed, at = pack(w.packed, b)
		if p, err := l.q.PublishTrace(k, w.packed[at:]); err != nil {
			unsent++
		} else {
			w.pending = append(w.pending, p)
		}
		w.buckets[k] = b[:0] // packed: reused for the next flush
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	lost := 0
	for _, p := range w.pending {
		if p.Wait(ctx) != nil {
			lost++
		}
	}
	clear(w.pending)
	clear(w.batch)
	w.spare, w.packed = w.lines, w.packed[:0]
	if lost > 0 {
		w.spare, w.packed = nil, nil // a publish may still be retried from them
	}
	if unsent+lost > 0 {
		l.dropped(unsent + lost)
		l.log.Warn("recorded events not stored", "messages_lost", lost, "unsent", unsent)
	}
}

// appendTrace appends one stored job update (a traceLine), by hand as
// appendLine does: a callback's every job reports at least once.
func appendTrace(b []byte, cb string, u *JobUpdate) []byte {
	b = append(b, `{"cb":`...)
	b = imevent.AppendJSONString(b, cb)
	b = append(b, `,"job":`...)
	b = imevent.AppendJSONString(b, u.Job)
	b = append(b, `,"outcome":`...)
	b = imevent.AppendJSONString(b, u.Outcome)
	if u.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(u.Attempt), 10)
	}
	if u.Error != "" {
		b = append(b, `,"error":`...)
		b = imevent.AppendJSONString(b, u.Error)
	}
	b = append(b, `,"at":"`...)
	b = u.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// Flush waits until what was recorded before it is written (or ctx is
// done): tests, and the backtest of what was just received.
func (l *Log) Flush(ctx context.Context) {
	if l == nil {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.idle.Broadcast()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for (len(l.buf) > 0 || len(l.lines) > 0 || l.busy) && ctx.Err() == nil {
		l.idle.Wait()
	}
}

// Close writes what is buffered and stops the writer.
func (l *Log) Close() {
	if l == nil {
		return
	}
	l.once.Do(func() { close(l.stop) })
	<-l.done
}
