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
	b := l.newBatch(name, l.gen(name), del)
	op := "add"
	if del {
		op = "remove"
	}
	err := l.each(ctx, members, func(m string) error { return b.add(ctx, m) })
	// Even after a bad line: the members before it are written.
	if ferr := b.flush(ctx); err == nil {
		err = ferr
	}
	l.waitSeen(ctx, b.rev.Load())
	l.changed(name, op, b.written, err)
	return b.written, err
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
	b := l.newBatch(name, next, false)
	err = l.each(ctx, members, func(m string) error { return b.add(ctx, m) })
	if err == nil {
		err = b.flush(ctx)
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
	// Done: from here on, the replace stands whatever follows. This
	// replica answers from the new generation once its watch has seen it.
	if err := l.waitGen(ctx, name, next); err != nil {
		l.log.Warn("list replaced, but this replica has not seen it yet", "list", name, "error", err)
	}
	l.purgeGen(ctx, name, old)
	l.changed(name, "replace", b.written, nil)
	return b.written, nil
}

// waitGen waits until this replica's watch has moved name to gen.
func (l *Lists) waitGen(ctx context.Context, name string, gen uint64) error {
	ctx, cancel := context.WithTimeout(ctx, defaultCleanup)
	defer cancel()
	for l.gen(name) != gen {
		select {
		case <-ctx.Done():
			return fmt.Errorf("lists: the switch to the new members was written but not seen back: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
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
		for g := range m.gens {
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

// waitSeen waits, a short while at most, until this replica's watch has
// applied revision rev: a write's caller then reads its own write here
// (the list's size in the answer, the next check), as every other
// replica will in a moment.
func (l *Lists) waitSeen(ctx context.Context, rev uint64) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for l.seen.Load() < rev {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}
