package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/internal/tracing"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Queue is what the engine needs of the durable queue.
type Queue interface {
	// Enqueue must not keep jobs, or anything they point into, after it
	// returns: the engine reuses their memory for the next callback.
	Enqueue(ctx context.Context, callbackID string, jobs []queue.Job) error
	// OnceBy claims key for ttl for callbackID; when it was claimed
	// before, seen says when and by which callback.
	OnceBy(ctx context.Context, key string, ttl time.Duration, callbackID string) (first bool, seen queue.OnceSeen, err error)
	Forget(ctx context.Context, key string, ttl time.Duration) error
	// MarkCancel notes an event of cmd at at for pairs, for cancel_on.
	MarkCancel(ctx context.Context, cmd string, pairs []queue.Pair, at time.Time, callbackID string) error
}

// Engine is the imcallback.Handler that matches every event of a callback against the
// active rules, decides Prev callbacks, and stores the matched actions as
// jobs before the callback is answered. Build it with every field it needs
// set at once and change none afterwards: callbacks read the fields
// without locking.
type Engine struct {
	Rules   func() *rules.Set // the active set; nil until the first load
	Queue   Queue
	Logger  *slog.Logger
	Metrics *Metrics        // nil: not counted
	Tracer  *tracing.Tracer // nil: not traced
	// Recorder, when set, keeps what each callback did (engine/record).
	Recorder Recorder
	// Counters holds the rules' counters (engine/state); nil: a rule that
	// reads a counter fails, as when the state is unreachable.
	Counters rules.CounterStore

	// DecisionTimeout bounds the synchronous decision of a Prev callback,
	// far inside Tencent's 2 s. When it passes, or a rule fails for a
	// target, the target is allowed, unless FailClosed, which denies with
	// FailCode.
	DecisionTimeout time.Duration
	// ReplyDeadline bounds the evaluations of an after-callback (a
	// before-callback's end at DecisionTimeout): past it, every rule that
	// still needs expr's VM fails for the rest of the callback
	// (rules.Set.NewBudget), so that a callback of costly rules is
	// answered, and stops burning CPU, near Tencent's 2 s. 0:
	// DefaultReplyDeadline; the request's context deadline, when sooner,
	// wins.
	ReplyDeadline time.Duration
	FailClosed    bool
	FailCode      int
	Now           func() time.Time
	// Budget bounds the rendered jobs of one callback; nil: unbounded.
	Budget *JobBudget
	// RulesLoaded, when set, is closed by the first load: callbacks that
	// arrive before it wait for it (maxRulesWait).
	RulesLoaded <-chan struct{}

	// scratch holds job lists and event buffers between callbacks; they
	// were a tenth of all the bytes a callback allocated.
	scratch sync.Pool
	health  storeHealth // for Ready
	// lineLimits bound the per-event log lines (loglimit.go).
	linesOnce  sync.Once
	lineLimits *lineLimits
}

// Recorder sees each callback once its jobs are stored, or failed to be
// (storeErr). It must copy what it keeps: the engine reuses cb, matches
// and jobs after it returns. jobs are in the order of their events. It
// runs on the hot path: keep it cheap.
type Recorder interface {
	// errs[i] are the rules that failed for event i; errs is nil when no
	// rule failed. skips are the matches a once key skipped, in event
	// order.
	Record(set *rules.Set, cb *imcallback.Callback, matches [][]rules.Match, errs [][]rules.RuleError, decisions []imcallback.ResultItem, jobs []queue.Job, skips []queue.OnceSkip, storeErr error)
}

// DefaultReplyDeadline is Engine.ReplyDeadline's default: Tencent waits 2 s
// for every callback (https://www.tencentcloud.com/document/product/1047/34354),
// and storing the jobs takes some of it.
const DefaultReplyDeadline = 1500 * time.Millisecond

// evalDeadline is when the evaluations of a callback that arrived at
// start end: start+d, or ctx's deadline when sooner.
func evalDeadline(ctx context.Context, start time.Time, d time.Duration) time.Time {
	deadline := start.Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(deadline) {
		deadline = cd
	}
	return deadline
}

// match appends the matches of ev against set to ms, within the
// callback's budget b, logging and counting the rules that failed at run
// time; it returns them too. A spent callback budget fails every later
// rule in the VM: it is logged once per callback (*spent records that it
// was), and counted for each.
func (e *Engine) match(ctx context.Context, set *rules.Set, ms []rules.Match, ev *imevent.Event, b *rules.Budget, spent *bool) ([]rules.Match, []rules.RuleError) {
	var counts *rules.Counts
	if set.HasCounters() {
		counts = e.count(ctx, set, ev)
	}
	ms, errs := set.AppendMatches(ms, ev, b, counts)
	for _, re := range errs {
		if !errors.Is(re.Err, rules.ErrCallbackBudget) || !*spent {
			*spent = *spent || errors.Is(re.Err, rules.ErrCallbackBudget)
			e.lines().log(e.logger(), slog.LevelWarn, "rule failed at run time; counted as no match",
				"rule", re.Rule, "err", re.Err.Error(), "command", ev.CallbackCommand,
				"from", ev.From_Account, "to", ev.To_Account, "pair_index", ev.PairIndex)
		}
		if e.Metrics != nil {
			e.Metrics.RuleErrors.WithLabelValues(re.Rule).Inc()
		}
	}
	return ms, errs
}

// addErrs sets all[i] to the errors of event i of n, allocating all only
// when an event has some: most callbacks have none.
func addErrs(all [][]rules.RuleError, i, n int, errs []rules.RuleError) [][]rules.RuleError {
	if errs == nil {
		return all
	}
	if all == nil {
		all = make([][]rules.RuleError, n)
	}
	all[i] = errs
	return all
}

func (e *Engine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// ErrNoRules is returned while no rule set has been loaded.
var ErrNoRules = errors.New("no rules loaded yet")

// Handle implements imcallback.Handler.
func (e *Engine) Handle(ctx context.Context, cb *imcallback.Callback) (imcallback.Reply, error) {
	if e.Tracer != nil {
		return e.handleTraced(ctx, cb)
	}
	return e.handle(ctx, cb, nil)
}

// handle is Handle; tr is the callback's trace, nil when tracing is off.
func (e *Engine) handle(ctx context.Context, cb *imcallback.Callback, tr *cbTrace) (imcallback.Reply, error) {
	set := e.rules(ctx)
	if set == nil {
		return imcallback.Reply{}, ErrNoRules
	}
	if e.Metrics != nil {
		e.Metrics.CountEvents(cb.Command, len(cb.Events))
	}
	log := cbLogger{e.logger(), cb.ID, e.lines()}
	reply := imcallback.OK()
	var (
		matches  [][]rules.Match
		ruleErrs [][]rules.RuleError
		err      error
	)
	// The callback's matches, budget and jobs live in sc until after
	// Record and the reply; nothing of them is kept past that (Queue,
	// Recorder). A decision's matching may outlast its callback (it times
	// out), so it has memory of its own.
	sc, _ := e.scratch.Get().(*jobScratch)
	if sc == nil {
		sc = &jobScratch{}
	}
	defer e.putScratch(sc)
	span := tr.start("match")
	if imevent.IsPrev(cb.Command) {
		matches, ruleErrs, reply.ResultItem, err = e.decide(ctx, set, cb, log)
	} else {
		matches, ruleErrs, err = e.matchAll(ctx, set, cb, log, sc)
	}
	endSpan(span, err) // err here: the jobs pass the budget
	if err != nil && reply.ResultItem == nil {
		// An after-callback over the budget fails and stores nothing; it
		// is recorded like one whose store failed, with the rules that
		// matched and failed up to the event that passed the budget.
		if e.Recorder != nil {
			e.Recorder.Record(set, cb, matches, ruleErrs, nil, nil, nil, err)
		}
		return imcallback.Reply{}, err
	}
	e.countMatches(matches)

	var (
		jobs     []queue.Job
		recorded []rules.Once
		skips    []queue.OnceSkip
	)
	if err == nil {
		span = tr.start("store")
		if err = e.markCancel(ctx, set, cb); err == nil {
			jobs, recorded, skips, err = e.jobs(ctx, cb, matches, log, sc, tr.traceParent())
		}
		if err == nil && len(jobs) > 0 {
			err = e.Queue.Enqueue(ctx, cb.ID, jobs)
			e.stored(ctx, err)
		}
		endSpan(span, err)
	}
	tr.setJobs(len(jobs))
	if e.Recorder != nil {
		e.Recorder.Record(set, cb, matches, ruleErrs, reply.ResultItem, jobs, skips, err)
	}
	if err != nil {
		// Nothing of the callback was stored (one message per callback),
		// so undo the once keys it claimed: a retried callback must not be
		// taken for a duplicate of one whose work was lost.
		for _, o := range recorded {
			if ferr := e.Queue.Forget(context.WithoutCancel(ctx), o.Key, o.For); ferr != nil {
				log.Warn("could not release a once key after a failed enqueue", "err", ferr.Error())
			}
		}
		if reply.ResultItem != nil {
			// The decision is what Tencent waits for; losing it would turn
			// a storage hiccup into blocked friend requests.
			n := len(jobs)
			if n == 0 { // not made: over the budget, or a once key failed
				n, _ = queuedJobs(matches)
			}
			log.Error("jobs of a before-callback could not be stored; replying with the decisions, these jobs will not run", "err", err.Error(), "jobs", n)
			if e.Metrics != nil {
				e.Metrics.UnstoredJobs.WithLabelValues(cb.Command).Add(float64(n))
			}
			return reply, nil
		}
		return imcallback.Reply{}, fmt.Errorf("storing %d jobs: %w", len(jobs), err)
	}
	if log.enabled(slog.LevelDebug) { // counting matches costs nothing when debug is off
		log.Debug("callback accepted", "command", cb.Command, "events", len(cb.Events),
			"matches", countMatched(matches), "jobs", len(jobs))
	}
	return reply, nil
}

// matched is what matching a callback's events found.
type matched struct {
	matches [][]rules.Match
	errs    [][]rules.RuleError // nil: no rule failed
	over    error               // the jobs pass the budget
	at      int                 // the event at which they did
}

// matchEvents matches the events of cb in order, checking the jobs they
// render against the budget event by event. With stop, matching ends at
// the event that passed it; otherwise it goes on (decisions are still
// needed) without checking further.
// Evaluations draw on b; matching ends early, too, once abandoned (when
// not nil) is set: nobody reads the result any more. The matches are in
// sc's memory, or in memory of their own when sc is nil.
func (e *Engine) matchEvents(ctx context.Context, set *rules.Set, cb *imcallback.Callback, stop bool, b *rules.Budget, abandoned *atomic.Bool, sc *jobScratch) matched {
	var all []rules.Match // every event's matches, one after the other
	res := matched{}
	if sc != nil {
		res.matches = slices.Grow(sc.lists[:0], len(cb.Events))[:len(cb.Events)]
		clear(res.matches)
		all = sc.matches[:0]
	} else {
		res.matches = make([][]rules.Match, len(cb.Events))
	}
	spent, budgetLogged := 0, false
	for i := range cb.Events {
		if abandoned != nil && abandoned.Load() {
			break
		}
		var errs []rules.RuleError
		n := len(all)
		all, errs = e.match(ctx, set, all, &cb.Events[i], b, &budgetLogged)
		if len(all) > n { // capped: a later append must not write into it
			res.matches[i] = all[n:len(all):len(all)]
		}
		res.errs = addErrs(res.errs, i, len(cb.Events), errs)
		if res.over != nil {
			continue
		}
		if res.over = e.Budget.spend(res.matches[i], &spent); res.over != nil {
			res.at = i
			if stop {
				break
			}
		}
	}
	if sc != nil {
		sc.lists, sc.matches = res.matches, all
	}
	return res
}

// matchAll matches every event of an after-callback: a callback over the
// budget stops matching at the event that passed it, and fails, with what
// was matched up to there.
func (e *Engine) matchAll(ctx context.Context, set *rules.Set, cb *imcallback.Callback, log cbLogger, sc *jobScratch) ([][]rules.Match, [][]rules.RuleError, error) {
	d := e.ReplyDeadline
	if d <= 0 {
		d = DefaultReplyDeadline
	}
	sctx := ctx
	if set.HasCounters() { // otherwise the clock would be read for nothing
		var cancel context.CancelFunc
		sctx, cancel = stateContext(ctx, set, time.Now().Add(d))
		defer cancel()
	}
	set.ResetBudget(&sc.budget, evalDeadline(ctx, e.now(), d))
	res := e.matchEvents(sctx, set, cb, true, &sc.budget, nil, sc)
	if res.over != nil {
		log.Warn("callback rejected before storing: its jobs pass a limit", "command", cb.Command,
			"events", len(cb.Events), "at_event", res.at, "err", res.over.Error())
	}
	return res.matches, res.errs, res.over
}

// countMatched counts the rule matches of all events, shadow rules included.
func countMatched(matches [][]rules.Match) int {
	n := 0
	for _, ms := range matches {
		n += len(ms)
	}
	return n
}

// decide runs the rules of a Prev callback within DecisionTimeout and
// returns one imcallback.ResultItem per target: the first matching rule (file order)
// with a deny action denies; otherwise the target is allowed.
// Jobs over the budget are not stored (err), but the decisions are made.
func (e *Engine) decide(ctx context.Context, set *rules.Set, cb *imcallback.Callback, log cbLogger) ([][]rules.Match, [][]rules.RuleError, []imcallback.ResultItem, error) {
	start := time.Now()
	timeout := e.DecisionTimeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	// The matching goroutine sends what it found, rule errors included,
	// instead of sharing state with this one: after a timeout nobody reads
	// the result, and the buffered channel lets the goroutine end anyway.
	// Rule errors found after the timeout are still logged and counted.
	// The budget's deadline stops the evaluations, and abandoned the
	// matching, once the decision is made without them: a callback of
	// costly rules must not burn CPU after it was answered.
	done := make(chan matched, 1)
	budget := set.NewBudget(evalDeadline(ctx, start, timeout))
	var abandoned atomic.Bool
	defer abandoned.Store(true)
	// Counters are read and written under the decision's deadline, but
	// not cancelled when the decision is made without them: an increment
	// under way still lands.
	sctx, cancel := stateContext(ctx, set, start.Add(timeout))
	go func() {
		defer cancel()
		done <- e.matchEvents(sctx, set, cb, false, budget, &abandoned, nil)
	}()
	var res matched
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case res = <-done:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	matches := res.matches
	items := make([]imcallback.ResultItem, len(cb.Events))
	for i := range cb.Events {
		ev := &cb.Events[i]
		items[i] = imcallback.ResultItem{To_Account: ev.To_Account}
		failed := timedOut || res.errs != nil && res.errs[i] != nil
		decision := "allow"
		if !timedOut {
			if d := rules.DecisionOf(matches[i]); d.Deny {
				items[i].ResultCode, items[i].ResultInfo = d.Code, d.Reason
				decision = "deny"
				log.Info("target denied", "rule", d.Rule, "command", cb.Command, "from", ev.From_Account, "to", ev.To_Account, "code", d.Code)
			}
		}
		if decision == "allow" && failed {
			if e.FailClosed {
				items[i].ResultCode, items[i].ResultInfo = e.failCode(), "friendflow could not decide"
				decision = "fail_closed"
			} else {
				decision = "fail_open"
			}
			log.Warn("decision failed", "decision", decision, "timed_out", timedOut, "command", cb.Command, "to", ev.To_Account)
		}
		if e.Metrics != nil {
			e.Metrics.Decisions.WithLabelValues(cb.Command, decision).Inc()
		}
	}
	if timedOut {
		matches = make([][]rules.Match, len(cb.Events)) // nothing is queued for a callback we could not decide
	}
	if e.Metrics != nil {
		e.Metrics.DecisionDuration.Observe(time.Since(start).Seconds())
	}
	return matches, res.errs, items, res.over
}

func (e *Engine) failCode() int {
	if e.FailCode != 0 {
		return e.FailCode
	}
	return actions.MinDenyCode
}

func (e *Engine) countMatches(matches [][]rules.Match) {
	if e.Metrics == nil {
		return
	}
	for i := range matches {
		for _, m := range matches[i] {
			e.Metrics.CountMatch(m.Rule)
		}
	}
}

// jobs turns the matches into jobs, claiming once keys on the way. It
// returns the keys it claimed so that a failed enqueue can release them,
// and the matches that keys claimed before skipped, for the record.
func (e *Engine) jobs(ctx context.Context, cb *imcallback.Callback, matches [][]rules.Match, log cbLogger, sc *jobScratch, traceParent string) ([]queue.Job, []rules.Once, []queue.OnceSkip, error) {
	var (
		jobs     []queue.Job
		recorded []rules.Once
		skips    []queue.OnceSkip
		evbuf    []byte
		now      = e.now()
	)
	// Sized once up front: jobs and event buffers grown by append were a
	// large share of a callback's allocations.
	if n, events := queuedJobs(matches); n > 0 {
		jobs = slices.Grow(sc.jobs[:0], n)
		evbuf = slices.Grow(sc.events[:0], events*eventJSONSize)
	}
	for i := range matches {
		var event json.RawMessage
		for mi, m := range matches[i] {
			if m.Shadow {
				log.Info("shadow rule matched; no action runs", "rule", m.Rule, "from", cb.Events[i].From_Account, "to", cb.Events[i].To_Account)
				continue
			}
			queued := 0
			for _, a := range m.Actions {
				if !a.Sync {
					queued++
				}
			}
			if queued == 0 {
				continue
			}
			var displayKey string
			if m.Once != nil {
				displayKey = m.Once.Key
				// Scoped to the rule: two rules with the same key expression
				// must not silence each other.
				onceKey := m.Rule + "\x00" + m.Once.Key
				first, seen, err := e.Queue.OnceBy(ctx, onceKey, m.Once.For, cb.ID)
				if err != nil {
					return nil, recorded, skips, fmt.Errorf("once key of rule %s: %w", m.Rule, err)
				}
				if !first {
					log.Info("once: seen within its window; actions skipped", "rule", m.Rule,
						"from", cb.Events[i].From_Account, "to", cb.Events[i].To_Account, "for", m.Once.For.String(),
						"first_callback", seen.CallbackID)
					skips = append(skips, queue.OnceSkip{Event: i, Rule: m.Rule, Key: m.Once.Key, Seen: seen})
					if e.Metrics != nil {
						e.Metrics.OnceSkips.WithLabelValues(m.Rule).Inc()
					}
					continue
				}
				recorded = append(recorded, rules.Once{Key: onceKey, For: m.Once.For})
			}
			if event == nil {
				// The callback's events share one buffer: a slice stays
				// valid when a later append moves the buffer.
				start := len(evbuf)
				evbuf = imevent.AppendEventJSON(evbuf, &cb.Events[i])
				event = evbuf[start:len(evbuf):len(evbuf)]
			}
			for ai, a := range m.Actions {
				if a.Sync {
					continue
				}
				j := queue.Job{
					Job: actions.Job{
						ID:     actions.JobID(cb.ID, i, mi, ai),
						Rule:   m.Rule,
						Action: a.Kind,
						Params: a.Params,
						Event:  event,
					},
					Retry:       a.Retry,
					OnceKey:     displayKey,
					CallbackID:  cb.ID,
					TraceParent: traceParent,
				}
				if a.Delay > 0 {
					j.Due = now.Add(a.Delay)
				}
				if a.Cancel != nil {
					j.Cancel = &queue.Cancel{On: a.Cancel.On, Created: now}
				}
				jobs = append(jobs, j)
			}
		}
	}
	sc.jobs, sc.events = jobs, evbuf
	return jobs, recorded, skips, nil
}

// jobScratch is the memory of one callback's matches and jobs, reused by
// the next once the callback is answered and recorded.
type jobScratch struct {
	jobs    []queue.Job
	events  []byte
	lists   [][]rules.Match // each event's matches: slices of matches
	matches []rules.Match
	budget  rules.Budget
}

// The memory of an unusually large callback is not kept: more jobs than
// maxScratchJobs, or more events or matches than maxScratchMatches.
const (
	maxScratchJobs    = 64
	maxScratchMatches = 256
)

func (e *Engine) putScratch(sc *jobScratch) {
	if cap(sc.jobs) > maxScratchJobs || cap(sc.lists) > maxScratchMatches || cap(sc.matches) > maxScratchMatches {
		return
	}
	// Drop what the jobs and matches point to (the rule set's actions,
	// the event buffer): a pooled scratch must not keep an old rule set
	// alive.
	clear(sc.jobs[:cap(sc.jobs)])
	clear(sc.lists[:cap(sc.lists)])
	clear(sc.matches[:cap(sc.matches)])
	sc.jobs, sc.events, sc.lists, sc.matches = sc.jobs[:0], sc.events[:0], sc.lists[:0], sc.matches[:0]
	sc.budget = rules.Budget{}
	e.scratch.Put(sc)
}

// eventJSONSize is about the encoded size of a typical event, a little
// over, so that a callback's event buffer is allocated once.
const eventJSONSize = 512

// queuedJobs counts the jobs matches can produce, and the events they
// come from (before once keys are looked at: an upper bound).
func queuedJobs(matches [][]rules.Match) (jobs, events int) {
	for i := range matches {
		n := 0
		for _, m := range matches[i] {
			if m.Shadow {
				continue
			}
			for _, a := range m.Actions {
				if !a.Sync {
					n++
				}
			}
		}
		if n > 0 {
			jobs += n
			events++
		}
	}
	return jobs, events
}

// cbLogger logs lines about one callback. The callback_id attribute is
// added only when a line is written: a logger made With it on every request
// costs allocations on the hot path that nobody reads.
type cbLogger struct {
	l   *slog.Logger
	id  string
	lim *lineLimits
}

func (c cbLogger) enabled(level slog.Level) bool { return c.l.Enabled(context.Background(), level) }

func (c cbLogger) log(level slog.Level, msg string, args []any) {
	if !c.enabled(level) {
		return
	}
	c.lim.log(c.l, level, msg, append([]any{"callback_id", c.id}, args...)...)
}

func (c cbLogger) Debug(msg string, args ...any) { c.log(slog.LevelDebug, msg, args) }
func (c cbLogger) Info(msg string, args ...any)  { c.log(slog.LevelInfo, msg, args) }
func (c cbLogger) Warn(msg string, args ...any)  { c.log(slog.LevelWarn, msg, args) }
func (c cbLogger) Error(msg string, args ...any) { c.log(slog.LevelError, msg, args) }
