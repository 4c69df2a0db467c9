package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Members is a stream of members to write, each with the error of reading
// it: a slice (MembersOf) or one member a line of a reader (LinesOf).
type Members = iter.Seq2[string, error]

// MembersOf streams a slice.
func MembersOf(ms []string) Members {
	return func(yield func(string, error) bool) {
		for _, m := range ms {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// LinesOf streams r's lines, one member each, with surrounding spaces
// (and a Windows line end) trimmed; blank lines are skipped. A line
// longer than MaxMemberBytes is an error, and only one line is held at a
// time, whatever the size of r.
func LinesOf(r io.Reader) Members {
	return func(yield func(string, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), MaxMemberBytes+256)
		line := 0
		for sc.Scan() {
			line++
			m := strings.TrimSpace(sc.Text())
			if m == "" {
				continue
			}
			if err := CheckMember(m); err != nil {
				yield("", fmt.Errorf("line %d: %w", line, err))
				return
			}
			if !yield(m, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("line %d: longer than %d bytes", line+1, MaxMemberBytes)
			}
			yield("", err)
		}
	}
}

// window is how many writes are in flight at once: enough to keep the
// server busy, few enough that a million-member import holds a few
// hundred kilobytes.
const window = 1024

// writer publishes key-value writes asynchronously, at most window in
// flight, and reports the first failure.
type writer struct {
	js      jetstream.JetStream
	subject string // "$KV.<bucket>."
	pending []jetstream.PubAckFuture
	n       int
}

func (w *writer) put(ctx context.Context, key string, del bool) error {
	msg := nats.NewMsg(w.subject + key)
	if del {
		msg.Header.Set("KV-Operation", "DEL")
	}
	f, err := w.js.PublishMsgAsync(msg)
	if err != nil {
		return fmt.Errorf("lists: write: %w", err)
	}
	w.pending = append(w.pending, f)
	w.n++
	if len(w.pending) >= window {
		return w.flush(ctx)
	}
	return nil
}

func (w *writer) flush(ctx context.Context) error {
	defer func() { w.pending = w.pending[:0] }()
	for _, f := range w.pending {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("lists: write: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("lists: write: %w", ctx.Err())
		}
	}
	return nil
}

func (l *Lists) newWriter() *writer {
	return &writer{js: l.js, subject: "$KV." + l.bucket + "."}
}

// Add writes members into the list (adding one already there changes
// nothing) and returns how many it wrote; on an error, the members before
// it are written.
func (l *Lists) Add(ctx context.Context, name string, members Members) (int, error) {
	return l.write(ctx, name, members, false)
}

// Remove removes members from the list and returns how many it was given.
func (l *Lists) Remove(ctx context.Context, name string, members Members) (int, error) {
	return l.write(ctx, name, members, true)
}

func (l *Lists) write(ctx context.Context, name string, members Members, del bool) (int, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	if err := l.Ready(); err != nil {
		return 0, fmt.Errorf("lists: %w", err)
	}
	gen := l.gen(name)
	w := l.newWriter()
	op := "add"
	if del {
		op = "remove"
	}
	err := l.each(ctx, members, func(m string) error { return w.put(ctx, memberKey(name, gen, m), del) })
	if ferr := w.flush(ctx); err == nil {
		err = ferr
	}
	l.changed(name, op, w.n, err)
	return w.n, err
}

// each calls f for each member, checking each.
func (l *Lists) each(ctx context.Context, members Members, f func(string) error) error {
	for m, err := range members {
		if err != nil {
			return err
		}
		if err := CheckMember(m); err != nil {
			return err
		}
		if err := f(m); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lists: %w", err)
		}
	}
	return nil
}

func (l *Lists) changed(name, op string, n int, err error) {
	if err != nil {
		l.log.Warn("list change failed", "list", name, "op", op, "members", n, "error", err)
	} else {
		l.log.Info("list changed", "list", name, "op", op, "members", n)
	}
	if l.cfg.Changed != nil && n > 0 {
		l.cfg.Changed(name, op, n)
	}
}

// LogMembers logs the members of a small change by name: account ids are
// not secrets, and an operator asking who blocked whom needs them.
func (l *Lists) LogMembers(name, op string, members []string) {
	l.log.Info("list members "+op, "list", name, "op", op, "accounts", members)
}

// Replace makes members the whole list. The rules read the old members
// until the last new one is written, then the new ones (see Lists); on an
// error, the list is left as it was. Members added to the list by others
// while the replace runs are lost with the old generation.
func (l *Lists) Replace(ctx context.Context, name string, members Members) (int, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	if err := l.Ready(); err != nil {
		return 0, fmt.Errorf("lists: %w", err)
	}
	l.writes.Lock()
	defer l.writes.Unlock()
	old, next, err := l.claimNext(ctx, name)
	if err != nil {
		return 0, err
	}
	w := l.newWriter()
	err = l.each(ctx, members, func(m string) error { return w.put(ctx, memberKey(name, next, m), false) })
	if ferr := w.flush(ctx); err == nil {
		err = ferr
	}
	if err == nil {
		_, err = l.kv.Put(ctx, name+"._gen", []byte(strconv.FormatUint(next, 10)))
	}
	if err != nil {
		// Leave the list as it was: drop what was written.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultCleanup)
		defer cancel()
		_, _ = l.kv.Put(cctx, name+"._next", []byte(strconv.FormatUint(old, 10)))
		l.purgeGen(cctx, name, next)
		l.changed(name, "replace", 0, err)
		return 0, err
	}
	l.purgeGen(ctx, name, old)
	l.changed(name, "replace", w.n, nil)
	return w.n, nil
}

// defaultCleanup bounds the cleaning up after a failed replace.
const defaultCleanup = 10 * time.Second

// claimNext claims the generation a replace writes: one above any this
// replica knows of, written to NAME._next so that every replica keeps the
// new members apart from the ones the rules read. A generation left by an
// import that stopped half way is purged first.
func (l *Lists) claimNext(ctx context.Context, name string) (old, next uint64, err error) {
	l.mu.RLock()
	var stale uint64
	if m := l.lists[name]; m != nil {
		old, next = m.gen, max(m.gen, m.next)+1
		if m.next > m.gen {
			stale = m.next
		}
		for g := range m.sets {
			next = max(next, g+1)
		}
	} else {
		next = 1
	}
	l.mu.RUnlock()
	if stale != 0 {
		l.purgeGen(ctx, name, stale)
	}
	if _, err := l.kv.Put(ctx, name+"._next", []byte(strconv.FormatUint(next, 10))); err != nil {
		return 0, 0, fmt.Errorf("lists: start replace: %w", err)
	}
	return old, next, nil
}

// purgeGen removes every member key of one generation from the stream.
func (l *Lists) purgeGen(ctx context.Context, name string, gen uint64) {
	subj := "$KV." + l.bucket + "." + name + "." + strconv.FormatUint(gen, 10) + ".>"
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		l.log.Warn("purging an old generation of a list failed; its keys stay in the bucket until the next replace", "list", name, "generation", gen, "error", err)
	}
}
