package state

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// A list's members are spread over numShards keys by a hash of the
// member, each key's value holding its members, sorted, one a line. One
// key per member was the first design: measured, the embedded
// JetStream's index of a million subjects took about 165 bytes a member
// of heap, and the process peaked near 400 MiB on an import of a million
// (700 MiB during a replace, with two generations). With shards, the
// index holds a few thousand subjects whatever the size, and a value is
// a few kilobytes at a million members.
const numShards = 4096

// shardOf is a member's shard: FNV-1a, stable across processes and
// versions (the shard is part of the stored key).
func shardOf(member string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(member))
	return h.Sum32() % numShards
}

func shardKey(name string, gen uint64, shard uint32) string {
	return name + "." + strconv.FormatUint(gen, 10) + "." + strconv.FormatUint(uint64(shard), 10)
}

// splitMembers is a shard value's members.
func splitMembers(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), "\n")
}

// maxBuffered is how many members a write buffers before it merges them
// into their shards: a few megabytes, whatever the size of an import. A
// variable for the tests, which watch an import half way.
var maxBuffered = 1 << 16

// mergeWorkers is how many shards a flush merges at once.
const mergeWorkers = 8

// mergeAttempts bounds the retries of one shard's compare-and-set when
// other writers change it at the same time.
const mergeAttempts = 20

// batch buffers members by shard and merges them into the shards of one
// generation of one list.
type batch struct {
	l       *Lists
	name    string
	gen     uint64
	del     bool
	pending map[uint32][]string
	n       int           // members buffered
	written int           // members merged
	rev     atomic.Uint64 // the highest revision written
}

func (l *Lists) newBatch(name string, gen uint64, del bool) *batch {
	return &batch{l: l, name: name, gen: gen, del: del, pending: map[uint32][]string{}}
}

func (b *batch) add(ctx context.Context, m string) error {
	s := shardOf(m)
	b.pending[s] = append(b.pending[s], m)
	b.n++
	if b.n >= maxBuffered {
		return b.flush(ctx)
	}
	return nil
}

// flush merges every buffered member into its shard, mergeWorkers shards
// at a time.
func (b *batch) flush(ctx context.Context) error {
	if b.n == 0 {
		return nil
	}
	work := make(chan uint32)
	errs := make(chan error, mergeWorkers)
	var wg sync.WaitGroup
	for range mergeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				rev, err := b.l.mergeShard(ctx, shardKey(b.name, b.gen, s), b.pending[s], b.del)
				if err != nil {
					errs <- err
					return
				}
				storeMax(&b.rev, rev)
			}
		}()
	}
	var err error
feed:
	for s := range b.pending {
		select {
		case work <- s:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return err
	}
	b.written += b.n
	b.n = 0
	clear(b.pending)
	return nil
}

// mergeShard adds members to (or, del, removes them from) one shard with
// compare-and-set, retrying when another writer changed it meanwhile.
// It returns the revision written (0: nothing changed).
func (l *Lists) mergeShard(ctx context.Context, key string, members []string, del bool) (uint64, error) {
	for range mergeAttempts {
		var cur []string
		var rev uint64
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, fmt.Errorf("lists: read %s: %w", key, err)
		default:
			cur, rev = splitMembers(e.Value()), e.Revision()
		}
		next, changed := mergeSorted(cur, members, del)
		if !changed {
			return 0, nil
		}
		val := []byte(strings.Join(next, "\n"))
		var wrote uint64
		if rev == 0 {
			wrote, err = l.kv.Create(ctx, key, val)
		} else {
			wrote, err = l.kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return wrote, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return 0, fmt.Errorf("lists: write %s: %w", key, err)
		}
		if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("lists: write %s: %w", key, cerr)
		}
	}
	return 0, fmt.Errorf("lists: write %s: other writers kept changing it (%d attempts)", key, mergeAttempts)
}

// isWrongSequence is JetStream's answer to an update whose expected
// revision is no longer the key's last (another writer came first).
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// mergeSorted returns cur, sorted, with add's members in it (or, del,
// out of it), and whether that changed it.
func mergeSorted(cur, add []string, del bool) ([]string, bool) {
	out := slices.Clone(cur)
	slices.Sort(out)
	changed := false
	for _, m := range add {
		i, found := slices.BinarySearch(out, m)
		switch {
		case del && found:
			out = slices.Delete(out, i, i+1)
			changed = true
		case !del && !found:
			out = slices.Insert(out, i, m)
			changed = true
		}
	}
	return out, changed
}

// storeMax raises a to v unless it is at least v already.
func storeMax(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
