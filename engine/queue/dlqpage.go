package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead letters are read a batch at a time (readDead), and never all at
// once: a listing, a replay or a drop of 100 000 dead letters holds one
// page (or one batch) in memory, whatever the store holds.

// DeadFilter picks dead letters. Its zero value picks every one.
type DeadFilter struct {
	Rule  string    // the rule's name, exactly
	Kind  string    // the action kind, exactly
	Error string    // a part of the last error, in any case
	Since time.Time // dead at or after (zero: no bound)
	Until time.Time // dead before (zero: no bound)
}

// IsZero reports whether f picks every dead letter.
func (f DeadFilter) IsZero() bool {
	return f.Rule == "" && f.Kind == "" && f.Error == "" && f.Since.IsZero() && f.Until.IsZero()
}

func (f DeadFilter) match(dl *DeadLetter) bool {
	switch {
	case f.Rule != "" && dl.Rule != f.Rule,
		f.Kind != "" && dl.Action != f.Kind,
		!f.Since.IsZero() && dl.DeadAt.Before(f.Since),
		!f.Until.IsZero() && !dl.DeadAt.Before(f.Until):
		return false
	case f.Error != "":
		return strings.Contains(strings.ToLower(dl.LastError), strings.ToLower(f.Error))
	}
	return true
}

// MaxDeadPage is the most dead letters one page holds; MaxDeadScan the
// most stream messages one page (or sweep step) reads, so that a filter
// matching little answers in bounded time too: the page then holds fewer
// than asked for, and its Next cursor goes on.
const (
	MaxDeadPage = 1000
	MaxDeadScan = 20000
)

// DeadQuery asks for one page of dead letters.
type DeadQuery struct {
	DeadFilter
	Limit  int    // at most this many (1 to MaxDeadPage; 0: 100)
	Cursor string // a page's Next; "" starts at the first (or newest)
	Newest bool   // newest first (a Cursor keeps the order it was made in)
}

// DeadPage is one page of dead letters.
type DeadPage struct {
	DeadLetters []DeadLetter
	// Next is the cursor of the next page, "" after the last one.
	Next string
	// Total is how many dead letters the store holds, filtered or not.
	Total int
}

// ErrBadCursor is a cursor this queue did not make.
var ErrBadCursor = errors.New("queue: bad dead-letter cursor")

// deadCursor is where a walk goes on: the next sequence to read and the
// last one to read (the store's last sequence when the walk began, so
// that dead letters made while it goes on, replayed jobs dying again
// among them, are not met twice), forwards or backwards.
type deadCursor struct {
	next, end uint64
	back      bool
}

func (c deadCursor) String() string {
	dir := "f"
	if c.back {
		dir = "b"
	}
	return dir + strconv.FormatUint(c.next, 10) + "-" + strconv.FormatUint(c.end, 10)
}

func parseDeadCursor(s string) (deadCursor, error) {
	var c deadCursor
	if len(s) < 4 || (s[0] != 'f' && s[0] != 'b') {
		return c, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	c.back = s[0] == 'b'
	a, b, ok := strings.Cut(s[1:], "-")
	var err1, err2 error
	c.next, err1 = strconv.ParseUint(a, 10, 64)
	c.end, err2 = strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return c, fmt.Errorf("%w %q", ErrBadCursor, s)
	}
	return c, nil
}

// startCursor is cursor s, or the whole store's walk when s is "".
func (q *Queue) startCursor(ctx context.Context, s string, back bool) (deadCursor, int, error) {
	info, err := q.dead.Info(ctx)
	if err != nil {
		return deadCursor{}, 0, fmt.Errorf("queue: dead letters: %w", err)
	}
	total := int(info.State.Msgs)
	if s != "" {
		c, err := parseDeadCursor(s)
		return c, total, err
	}
	st := info.State
	if st.Msgs == 0 {
		return deadCursor{next: 1, end: 0}, total, nil // nothing to walk
	}
	if back {
		return deadCursor{next: st.LastSeq, end: st.FirstSeq, back: true}, total, nil
	}
	return deadCursor{next: st.FirstSeq, end: st.LastSeq}, total, nil
}

// done reports whether c has nothing left to read.
func (c deadCursor) done() bool {
	if c.back {
		return c.next < c.end || c.next == 0
	}
	return c.next > c.end
}

// walkBatch is how many dead letters one read asks the store for.
const walkBatch = 100

// walkDead reads dead letters from c on, calling fn with each until fn
// says stop or scan stream sequences were read; it returns where to go on
// (done when nothing is left). Each entry's picked says whether f picks
// it; only those are decoded whole.
func (q *Queue) walkDead(ctx context.Context, c deadCursor, scan int, f DeadFilter, fn func(deadEntry) (bool, error)) (deadCursor, error) {
	if c.back {
		return q.walkDeadBack(ctx, c, scan, f, fn)
	}
	if c.done() {
		return c, nil
	}
	read := 0
	err := q.readDead(ctx, c.next, f, func(e deadEntry) (bool, error) {
		if e.seq > c.end {
			c.next = c.end + 1
			return false, nil
		}
		read++
		c.next = e.seq + 1
		more, err := fn(e)
		return more && err == nil && read < scan, err
	})
	if errors.Is(err, errDeadExhausted) {
		c.next, err = c.end+1, nil
	}
	return c, err
}

// walkDeadBack walks backwards, newest first: it reads the walkBatch
// sequences from c.next down forwards and hands them to fn in reverse, one
// batch (at most walkBatch dead letters) in memory at a time. Sequences
// count towards scan whether they still hold a dead letter or not.
func (q *Queue) walkDeadBack(ctx context.Context, c deadCursor, scan int, f DeadFilter, fn func(deadEntry) (bool, error)) (deadCursor, error) {
	chunk := make([]deadEntry, 0, walkBatch)
	for read := 0; !c.done() && read < scan; {
		lo := max(c.end, 1)
		if c.next >= lo+walkBatch {
			lo = c.next - walkBatch + 1
		}
		hi := c.next
		chunk = chunk[:0]
		err := q.readDead(ctx, lo, f, func(e deadEntry) (bool, error) {
			if e.seq > hi {
				return false, nil
			}
			chunk = append(chunk, e)
			return e.seq < hi, nil
		})
		if err != nil && !errors.Is(err, errDeadExhausted) {
			return c, err
		}
		read += int(hi - lo + 1)
		c.next = lo - 1 // lo is 1 or more: 0 ends the walk
		for i := len(chunk) - 1; i >= 0; i-- {
			more, err := fn(chunk[i])
			if err != nil || !more {
				c.next = chunk[i].seq - 1
				return c, err
			}
		}
	}
	return c, nil
}

// errDeadExhausted ends a readDead that met the end of the stream.
var errDeadExhausted = errors.New("queue: no more dead letters")

// readDead reads dead letters in stream order from sequence from on,
// walkBatch at a time, through a consumer of its own that lives as long
// as the read, calling fn with each (decoded whole if f picks it, see
// pickDeadEntry) until fn says stop (nil) or the stream ends
// (errDeadExhausted). A consumer delivers the messages as
// stored, one request per batch; a lookup by sequence per message would
// wrap each in JSON, and one filtered by subject would build the subject
// index of every store block it reads, kept for minutes after.
func (q *Queue) readDead(ctx context.Context, from uint64, f DeadFilter, fn func(deadEntry) (bool, error)) error {
	cons, err := q.dead.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   max(from, 1),
		AckPolicy:     jetstream.AckNonePolicy,
		MemoryStorage: true,
		Replicas:      1,
		// Deleted below; this removes it if the delete is lost.
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("queue: dead letters: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoffTimeout)
		defer cancel()
		if err := q.dead.DeleteConsumer(dctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			q.log.Debug("cannot delete a dead-letter reader; it expires", "err", err)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(walkBatch)
		if err != nil {
			return fmt.Errorf("queue: dead letters: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("queue: dead letters: %w", err)
			}
			raw := jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Data: m.Data(), Time: md.Timestamp}
			if more, err := fn(q.pickDeadEntry(&raw, f)); err != nil || !more {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("queue: dead letters: %w", err)
		}
		if got == 0 {
			return errDeadExhausted
		}
	}
}

// ListDead returns one page of the dead letters q picks, oldest first
// unless q.Newest.
func (q *Queue) ListDead(ctx context.Context, dq DeadQuery) (DeadPage, error) {
	limit := dq.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxDeadPage)
	c, total, err := q.startCursor(ctx, dq.Cursor, dq.Newest)
	if err != nil {
		return DeadPage{}, err
	}
	page := DeadPage{Total: total, DeadLetters: []DeadLetter{}}
	c, err = q.walkDead(ctx, c, MaxDeadScan, dq.DeadFilter, func(e deadEntry) (bool, error) {
		if e.picked {
			page.DeadLetters = append(page.DeadLetters, e.dl)
		}
		return len(page.DeadLetters) < limit, nil
	})
	if err != nil {
		return DeadPage{}, err
	}
	if !c.done() {
		page.Next = c.String()
	}
	return page, nil
}

// DeadSweep picks the dead letters a ReplayWhere or DropWhere acts on.
type DeadSweep struct {
	DeadFilter
	Cursor string // a previous sweep's Next; "" starts at the first
	Limit  int    // stop after this many matches (0: no bound)
	DryRun bool   // count them only
}

// SweepResult says what a sweep did and where it stopped.
type SweepResult struct {
	N    int    // dead letters replayed or dropped (or that would be)
	Next string // where to go on; "" when the sweep is complete
}

// ReplayWhere replays the dead letters s picks (see Replay), oldest
// first, reading and replaying one at a time.
func (q *Queue) ReplayWhere(ctx context.Context, s DeadSweep) (SweepResult, error) {
	return q.sweep(ctx, s, func(e deadEntry) (bool, error) {
		if e.dl.Job.ID == "" {
			return q.replayRaw(ctx, e)
		}
		return q.replayOne(ctx, e)
	})
}

// DropWhere deletes the dead letters s picks, oldest first. Without a
// filter, cursor or limit it purges the stream in one request.
func (q *Queue) DropWhere(ctx context.Context, s DeadSweep) (SweepResult, error) {
	if s.IsZero() && s.Cursor == "" && s.Limit == 0 {
		if s.DryRun {
			info, err := q.dead.Info(ctx)
			if err != nil {
				return SweepResult{}, fmt.Errorf("queue: drop dead letters: %w", err)
			}
			return SweepResult{N: int(info.State.Msgs)}, nil
		}
		n, err := q.Drop(ctx, nil)
		return SweepResult{N: n}, err
	}
	return q.sweep(ctx, s, func(e deadEntry) (bool, error) {
		deleted, err := q.deleteDead(ctx, e.seq)
		if err != nil {
			return false, fmt.Errorf("queue: drop %s: %w", e.dl.ID, err)
		}
		return deleted, nil
	})
}

// sweep calls act with each dead letter s picks until s.Limit of them,
// or the whole store when s.Limit is 0.
func (q *Queue) sweep(ctx context.Context, s DeadSweep, act func(deadEntry) (bool, error)) (SweepResult, error) {
	c, _, err := q.startCursor(ctx, s.Cursor, false)
	if err != nil {
		return SweepResult{}, err
	}
	var res SweepResult
	matched := 0
	for !c.done() && (s.Limit == 0 || matched < s.Limit) {
		c, err = q.walkDead(ctx, c, MaxDeadScan, s.DeadFilter, func(e deadEntry) (bool, error) {
			if !e.picked {
				return true, nil
			}
			matched++
			if s.DryRun {
				res.N++
			} else if done, err := act(e); err != nil {
				return false, err
			} else if done {
				res.N++
			}
			return s.Limit == 0 || matched < s.Limit, nil
		})
		if err != nil {
			return res, err
		}
		if s.Limit != 0 {
			break // one step per call: the caller reports progress between them
		}
	}
	if !c.done() {
		res.Next = c.String()
	}
	return res, nil
}
