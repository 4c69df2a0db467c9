package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

// Outcomes are the values of Filter.Outcome (docs/console.md): a rule matched
// (shadow matches aside), none did (or, with a rule, that one did not), the
// Prev decision denied, a rule failed at run time or the jobs could not be
// stored, a once key skipped a match.
var Outcomes = []string{"matched", "unmatched", "denied", "failed", "skipped"}

// Filter selects recorded events; zero fields select everything.
type Filter struct {
	Command string
	Account string // From or To
	Rule    string
	// Outcome is one of Outcomes; with Rule it is that rule's, without it
	// any rule's.
	Outcome string
	Since   time.Time // received at or after
	Until   time.Time // received before
}

// Validate says what is wrong with f.
func (f Filter) Validate() error {
	if f.Outcome != "" && !slices.Contains(Outcomes, f.Outcome) {
		return fmt.Errorf("outcome must be one of %v, got %q", Outcomes, f.Outcome)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return errors.New("until must be after since")
	}
	return nil
}

// Matches says whether f selects e.
func (f *Filter) Matches(e *Event) bool {
	switch {
	case f.Command != "" && e.Command != f.Command,
		f.Account != "" && e.From != f.Account && e.To != f.Account,
		!f.Since.IsZero() && e.Received.Before(f.Since),
		!f.Until.IsZero() && !e.Received.Before(f.Until),
		f.Rule != "" && f.Outcome == "" && !concerns(e, f.Rule):
		return false
	}
	return f.outcomeOf(e)
}

// concerns says whether rule matched e, failed on it, made one of its
// jobs or was skipped by its once key.
func concerns(e *Event, rule string) bool {
	if slices.Contains(e.Matched, rule) || slices.Contains(e.Errors, rule) {
		return true
	}
	for _, j := range e.Jobs {
		if j.Rule == rule {
			return true
		}
	}
	for _, s := range e.OnceSkipped {
		if s.Rule == rule {
			return true
		}
	}
	return false
}

func (f *Filter) outcomeOf(e *Event) bool {
	switch f.Outcome {
	case "matched":
		if f.Rule != "" {
			return slices.Contains(e.Matched, f.Rule) && !slices.Contains(e.Shadow, f.Rule)
		}
		return len(e.Matched) > len(e.Shadow)
	case "unmatched":
		if f.Rule != "" {
			return !slices.Contains(e.Matched, f.Rule) && !slices.Contains(e.Errors, f.Rule)
		}
		return len(e.Matched) == 0
	case "denied":
		return e.Decision != nil && e.Decision.ResultCode != 0 && (f.Rule == "" || slices.Contains(e.Matched, f.Rule))
	case "failed":
		if f.Rule != "" {
			return slices.Contains(e.Errors, f.Rule)
		}
		return len(e.Errors) > 0 || e.StoreError != ""
	case "skipped":
		for _, s := range e.OnceSkipped {
			if f.Rule == "" || s.Rule == f.Rule {
				return true
			}
		}
		return false
	}
	return true
}

// maxScan bounds the events one List reads: a filter that selects
// nothing in a large recording answers with a cursor to go on from,
// rather than reading the whole stream in one request.
const maxScan = 50000

// List returns up to limit events f selects with IDs below before (0:
// from the newest), newest first, and the before of the next page (0:
// none). It reads the stream backwards a batch of messages at a time,
// holding at most a batch and the page.
func (l *Log) List(ctx context.Context, f Filter, before uint64, limit int) ([]Event, uint64, error) {
	if l == nil {
		return nil, 0, nil
	}
	first, last, _, err := l.q.EventBounds(ctx)
	if err != nil || last == 0 {
		return nil, 0, err
	}
	hi := last
	if before > 0 {
		if seqOf(before) < first {
			return nil, 0, nil
		}
		hi = min(hi, seqOf(before))
	}
	var out []Event
	scanned := 0
	// A message holds 1 to idsPerMsg events: the first read back is a
	// few messages, and each next one twice as many, up to a full read.
	span := uint64(4)
	for hi >= first && hi > 0 {
		lo := first
		if hi-first+1 > span {
			lo = hi - span + 1
		}
		span = min(2*span, queue.MaxEventsBatch)
		chunk, n, err := l.chunk(ctx, f, lo, hi, before, limit-len(out)+1)
		if err != nil {
			return nil, 0, err
		}
		scanned += n
		for i := len(chunk) - 1; i >= 0; i-- {
			if len(out) == limit {
				return out, out[len(out)-1].ID, nil
			}
			out = append(out, chunk[i])
		}
		if lo == first {
			break
		}
		// Events are stored about in the order received: an hour of
		// slack covers replicas' clocks and buffers.
		if !f.Since.IsZero() && len(chunk) == 0 && l.olderThan(ctx, lo, f.Since.Add(-time.Hour)) {
			break
		}
		if scanned >= maxScan && len(out) < limit {
			return out, eventID(lo, 0), nil
		}
		hi = lo - 1
	}
	return out, 0, nil
}

// chunk returns the newest keep events f selects below before (0: any)
// in the messages lo..hi, oldest first, and how many events it read: a
// message holds up to idsPerMsg events, and only what a page can still
// show is kept.
func (l *Log) chunk(ctx context.Context, f Filter, lo, hi, before uint64, keep int) ([]Event, int, error) {
	pre := f.prefilter()
	var (
		out  []Event
		n    int
		derr error
	)
	err := l.readRange(ctx, lo, hi, func(m queue.RecordedMsg) bool {
		n += bytes.Count(m.Data, []byte("\n")) + 1
		_, derr = eachEvent(m, pre, func(e *Event) bool {
			if (before == 0 || e.ID < before) && f.Matches(e) {
				if len(out) == keep {
					copy(out, out[1:])
					out = out[:keep-1]
				}
				out = append(out, *e)
			}
			return true
		})
		return derr == nil
	})
	if err == nil {
		err = derr
	}
	return out, n, err
}

// readRange calls fn with the messages lo..hi, oldest first, a read at a
// time, until fn returns false.
func (l *Log) readRange(ctx context.Context, lo, hi uint64, fn func(queue.RecordedMsg) bool) error {
	for seq := lo; seq <= hi; {
		more := true
		next, err := l.q.ReadEvents(ctx, seq, hi, int(hi-seq+1), func(m queue.RecordedMsg) bool {
			m.Data = l.unpack(m)
			more = fn(m)
			return more
		})
		if err != nil || !more || next == 0 {
			return err
		}
		seq = next
	}
	return nil
}

// olderThan says whether the message at seq was stored before t.
func (l *Log) olderThan(ctx context.Context, seq uint64, t time.Time) bool {
	older := false
	_, _ = l.q.ReadEvents(ctx, seq, seq, 1, func(m queue.RecordedMsg) bool {
		older = m.Time.Before(t)
		return false
	})
	return older
}

// Each calls fn with every event f selects, oldest first, a batch of
// messages at a time, until fn returns an error (returned) or the stream
// ends.
func (l *Log) Each(ctx context.Context, f Filter, fn func(*Event) error) error {
	if l == nil {
		return nil
	}
	first, last, _, err := l.q.EventBounds(ctx)
	if err != nil || last == 0 {
		return err
	}
	pre := f.prefilter()
	for seq := first; seq <= last; {
		var ferr error
		next, err := l.q.ReadEvents(ctx, seq, last, queue.MaxEventsBatch, func(m queue.RecordedMsg) bool {
			m.Data = l.unpack(m)
			more, derr := eachEvent(m, pre, func(e *Event) bool {
				if f.Matches(e) {
					ferr = fn(e)
				}
				return ferr == nil
			})
			if derr != nil {
				ferr = derr
			}
			return more && ferr == nil
		})
		if err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
		if next == 0 {
			return nil
		}
		seq = next
	}
	return nil
}

// Export calls fn with every event f selects, oldest first, each with its
// Outcomes derived against the rule set that decided it: the input of a
// backtest, and of `friendflow events export`.
func (l *Log) Export(ctx context.Context, f Filter, fn func(*Event) error) error {
	return l.Each(ctx, f, func(e *Event) error {
		e.Outcomes = l.outcomesOf(e)
		return fn(e)
	})
}

// Follow calls fn with each new event f selects, as it is stored, until
// ctx is done; from, when not 0, starts at that event id instead.
func (l *Log) Follow(ctx context.Context, f Filter, from uint64, fn func(*Event) error) error {
	if l == nil {
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // a closing log ends its followers (the admin server's drain waits for them)
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var ferr error
	pre := f.prefilter()
	err := l.q.FollowEvents(ctx, seqOf(from), func(m queue.RecordedMsg) bool {
		m.Data = l.unpack(m)
		_, derr := eachEvent(m, pre, func(e *Event) bool {
			if e.ID >= from && f.Matches(e) {
				ferr = fn(e)
			}
			return ferr == nil
		})
		return derr == nil && ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

func (l *Log) outcomesOf(e *Event) []rules.Outcome {
	set := l.setOf(e.RulesHash)
	if set == nil {
		return nil
	}
	ev, err := e.Decode()
	if err != nil {
		return nil
	}
	e.decoded = &ev // a backtest reads it next
	o, _ := set.Outcomes(&ev)
	if len(set.Counters()) > 0 {
		o = asRecorded(o, e)
	}
	return o
}

// asRecorded reconciles outcomes evaluated again, without counts, with
// what was recorded. count() read the deployment's counters when the event
// was handled and those values are not kept, so a rule reading them fails
// here: the record stands. A rule it shows matched is matched, its
// actions not rendered again (rules.NotRendered), and a failure it does
// not show is no match.
func asRecorded(o []rules.Outcome, e *Event) []rules.Outcome {
	out := o[:0]
	for _, oc := range o {
		if oc.Status == rules.StatusError {
			switch {
			case slices.Contains(e.Matched, oc.Rule):
				oc = rules.Outcome{Rule: oc.Rule, Status: rules.StatusMatched, Error: rules.NotRendered}
				if slices.Contains(e.Shadow, oc.Rule) {
					oc.Status = rules.StatusShadow
				}
			case !slices.Contains(e.Errors, oc.Rule):
				continue
			}
		}
		out = append(out, oc)
	}
	return out
}

// Get returns the event id with its jobs' trace, and the rule set that
// decided it (nil when this process does not have it).
func (l *Log) Get(ctx context.Context, id uint64) (Event, *rules.Set, bool, error) {
	if l == nil || id == 0 {
		return Event{}, nil, false, nil
	}
	var (
		e     Event
		found bool
		derr  error
	)
	_, err := l.q.ReadEvents(ctx, seqOf(id), seqOf(id), 1, func(m queue.RecordedMsg) bool {
		m.Data = l.unpack(m)
		if m.Seq != seqOf(id) {
			return false
		}
		_, derr = eachEvent(m, nil, func(got *Event) bool {
			if got.ID == id {
				e, found = *got, true
				return false
			}
			return true
		})
		return false
	})
	if err == nil {
		err = derr
	}
	if err != nil || !found {
		return Event{}, nil, false, err
	}
	if err := l.trace(ctx, &e); err != nil {
		return e, nil, true, err
	}
	return e, l.setOf(e.RulesHash), true, nil
}

// traceSlack is how long before an event's receipt its trace is read
// from: the store's clock and a replica's may differ.
const traceSlack = 5 * time.Minute

// trace adds what happened to e's jobs since it was recorded.
func (l *Log) trace(ctx context.Context, e *Event) error {
	if len(e.Jobs) == 0 {
		return nil
	}
	err := l.q.ReadTrace(ctx, bucketOf(e.CallbackID), e.Received.Add(-traceSlack), func(m queue.RecordedMsg) bool {
		m.Data = l.unpack(m)
		for line := range bytes.SplitSeq(m.Data, []byte("\n")) {
			var u traceLine
			if json.Unmarshal(line, &u) != nil || u.Callback != e.CallbackID {
				continue
			}
			for k := range e.Jobs {
				j := &e.Jobs[k]
				if j.ID != u.Job {
					continue
				}
				e.Trace = append(e.Trace, u.JobUpdate)
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	// Stored in the order replicas wrote them; told in the order they
	// happened. Each job ends as its last update says.
	slices.SortStableFunc(e.Trace, func(a, b JobUpdate) int { return a.At.Compare(b.At) })
	for _, u := range e.Trace {
		for k := range e.Jobs {
			if j := &e.Jobs[k]; j.ID == u.Job {
				j.Outcome, j.Attempt, j.Updated, j.LastError = u.Outcome, u.Attempt, u.At, u.Error
			}
		}
	}
	return nil
}

// Len is how many events the stream holds.
func (l *Log) Len(ctx context.Context) int {
	if l == nil {
		return 0
	}
	_, _, n, err := l.q.EventBounds(ctx)
	if err != nil {
		return 0
	}
	return int(n)
}

// MatchCounts counts, per rule, the recorded events it matched, reading
// the stream a batch at a time.
func (l *Log) MatchCounts(ctx context.Context) map[string]int {
	out := map[string]int{}
	if l == nil {
		return out
	}
	first, last, _, err := l.q.EventBounds(ctx)
	for seq := first; err == nil && seq > 0 && seq <= last; {
		var next uint64
		next, err = l.q.ReadEvents(ctx, seq, last, queue.MaxEventsBatch, func(m queue.RecordedMsg) bool {
			m.Data = l.unpack(m)
			for line := range bytes.SplitSeq(m.Data, []byte("\n")) {
				eachMatched(line, func(rule string) { out[rule]++ })
			}
			return true
		})
		if next == 0 {
			break
		}
		seq = next
	}
	return out
}

// Callbacks counts the callbacks recorded since t, reading back from the
// newest event a batch at a time.
func (l *Log) Callbacks(ctx context.Context, since time.Time) int {
	if l == nil {
		return 0
	}
	first, last, _, err := l.q.EventBounds(ctx)
	if err != nil || last == 0 {
		return 0
	}
	n, lastCB := 0, ""
	for hi := last; hi >= first && hi > 0; {
		lo := first
		if hi-first+1 > queue.MaxEventsBatch {
			lo = hi - queue.MaxEventsBatch + 1
		}
		older := false
		err := l.readRange(ctx, lo, hi, func(m queue.RecordedMsg) bool {
			for line := range bytes.SplitSeq(m.Data, []byte("\n")) {
				cb, received, ok := head(line)
				if !ok {
					continue
				}
				if received.Before(since) {
					older = true
					continue
				}
				if string(cb) != lastCB { // a callback's events are written together
					lastCB = string(cb)
					n++
				}
			}
			return true
		})
		if err != nil || older || lo == first {
			break
		}
		hi = lo - 1
	}
	return n
}

// unpack returns m's data as JSONL (codec.go's unpack); a message that
// cannot be unpacked reads as empty, and is logged.
func (l *Log) unpack(m queue.RecordedMsg) []byte {
	data, err := unpack(m.Data)
	if err != nil {
		l.log.Warn("recorded message unreadable", "seq", m.Seq, "error", err)
	}
	return data
}
