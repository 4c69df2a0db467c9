package state

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendflow/friendflow/rules"
)

// Buckets makes the key-value buckets of a namespace (queue.Queue's
// StateBucket), in its JetStream: TopKeys reads a bucket's stream.
type Buckets interface {
	StateBucket(ctx context.Context, suffix string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	JetStream() jetstream.JetStream
}

// Counter operations, as Observe names them.
const (
	OpAdd = "add"
	OpGet = "get"
)

// Counters is the counters' state in JetStream, a rules.CounterStore.
// Safe for concurrent use.
type Counters struct {
	buckets Buckets
	// MaxBytes bounds each counter's bucket (0: unbounded but for the
	// window); past it the oldest keys go first.
	MaxBytes int64
	// Observe, when set, sees every operation: its kind (OpAdd, OpGet),
	// how long it took, the compare-and-set conflicts it retried and its
	// error. It must not block.
	Observe func(op string, took time.Duration, conflicts int, err error)

	mu   sync.Mutex
	kvs  map[string]*counterBucket // by counter name
	make sync.Mutex                // held while a bucket is made
}

type counterBucket struct {
	window time.Duration
	kv     jetstream.KeyValue

	mu   sync.Mutex
	last map[string]lastWrite // by key-value key
	// turns are the keys this replica is writing, each with the
	// increments waiting for the write under way (countbatch.go).
	turns map[string]*turn
}

// NewCounters returns the counters kept in b's buckets.
func NewCounters(b Buckets) *Counters {
	return &Counters{buckets: b, kvs: make(map[string]*counterBucket)}
}

// maxConflicts bounds the compare-and-set retries of one increment: each
// conflict is another writer's success, so this many in a row means a
// key busier than any friend request rate; the caller's deadline comes
// first in practice.
const maxConflicts = 1000

// Add implements rules.CounterStore: a compare-and-set of the key's
// value, retried while another writer got in first.
func (c *Counters) Add(ctx context.Context, ctr rules.Counter, key string, at time.Time) (int, error) {
	start := time.Now()
	n, conflicts, err := c.add(ctx, ctr, key, at)
	if c.Observe != nil {
		c.Observe(OpAdd, time.Since(start), conflicts, err)
	}
	return n, err
}

func (c *Counters) add(ctx context.Context, ctr rules.Counter, key string, at time.Time) (n, conflicts int, err error) {
	b, err := c.bucket(ctx, ctr)
	if err != nil {
		return 0, 0, err
	}
	k := KVKey(key)
	inc := &increment{ctx: ctx, slot: rules.CounterSlot(at, ctr.Window), done: make(chan struct{})}
	// While an increment of k is being written by this replica, the next
	// ones wait and are then written together, in one compare-and-set:
	// writing each for itself, they all started from the same revision
	// and all but one conflicted, retried and read (a flood from one
	// account, the case counters are for, is many increments of one key
	// at once).
	if !b.join(k, inc) {
		if err := b.wait(ctx, k, inc); err != nil {
			return 0, 0, fmt.Errorf("counter %s: %w", ctr.Name, err)
		}
		if !inc.lead {
			return inc.n, 0, inc.err
		}
	}
	batch := b.take(k, inc)
	wctx, cancel := batchContext(batch)
	conflicts, err = b.write(wctx, ctr, k, batch)
	cancel()
	b.finish(k, batch, err)
	return inc.n, conflicts, inc.err
}

// write counts every increment of batch into key k, in their order, with
// one compare-and-set, retried while another replica got in first, and
// sets each increment's count.
func (b *counterBucket) write(ctx context.Context, ctr rules.Counter, k string, batch []*increment) (conflicts int, err error) {
	step := rules.CounterStep(ctr.Window)
	buf := make([]byte, 0, 64)
	// The value this replica wrote last, if it still holds it: when no
	// other writer came in between (always, with one replica), the write
	// needs no read first. A stale one costs a conflict and a read.
	slots, rev, cached := b.cached(k)
	for {
		if !cached {
			if slots, rev, err = b.read(ctx, k, step); err != nil {
				return conflicts, err
			}
		}
		cached = false
		for _, inc := range batch {
			slots, inc.n = rules.SlideSlots(slots, inc.slot, 1, getSlot, mkSlot)
		}
		buf = encode(buf[:0], step, slots)
		var next uint64
		if rev == 0 {
			next, err = b.kv.Create(ctx, k, buf)
		} else {
			next, err = b.kv.Update(ctx, k, buf, rev)
		}
		switch {
		case err == nil:
			b.remember(k, next, slots)
			return conflicts, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			if conflicts++; conflicts >= maxConflicts {
				return conflicts, fmt.Errorf("counter %s: %d write conflicts in a row", ctr.Name, conflicts)
			}
			if err := backoff(ctx, conflicts); err != nil {
				return conflicts, fmt.Errorf("counter %s: %w", ctr.Name, err)
			}
		default:
			b.forget(k)
			return conflicts, fmt.Errorf("counter %s: %w", ctr.Name, err)
		}
	}
}

// backoff waits a random time, longer after more conflicts in a row
// (full jitter, up to maxBackoff): writers of one hot key that all retry
// at once would mostly conflict again.
func backoff(ctx context.Context, conflicts int) error {
	limit := min(backoffUnit<<min(conflicts, 10), maxBackoff)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

const (
	backoffUnit = 50 * time.Microsecond
	maxBackoff  = 5 * time.Millisecond
)

// maxCached bounds the values a bucket remembers; past it they are all
// forgotten (the next write of each reads first).
const maxCached = 4096

// lastWrite is the value this replica last wrote to a key.
type lastWrite struct {
	rev   uint64
	slots []slot
}

// cached returns a copy of the value this replica last wrote to k.
func (b *counterBucket) cached(k string) ([]slot, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.last[k]
	if !ok {
		return nil, 0, false
	}
	return slices.Clone(w.slots), w.rev, true
}

func (b *counterBucket) remember(k string, rev uint64, slots []slot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil || len(b.last) >= maxCached {
		b.last = make(map[string]lastWrite)
	}
	b.last[k] = lastWrite{rev: rev, slots: slots}
}

func (b *counterBucket) forget(k string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.last, k)
}

// Get implements rules.CounterStore.
func (c *Counters) Get(ctx context.Context, ctr rules.Counter, key string, at time.Time) (int, error) {
	start := time.Now()
	n, err := c.get(ctx, ctr, key, at)
	if c.Observe != nil {
		c.Observe(OpGet, time.Since(start), 0, err)
	}
	return n, err
}

func (c *Counters) get(ctx context.Context, ctr rules.Counter, key string, at time.Time) (int, error) {
	b, err := c.bucket(ctx, ctr)
	if err != nil {
		return 0, err
	}
	slots, _, err := b.read(ctx, KVKey(key), rules.CounterStep(ctr.Window))
	if err != nil {
		return 0, err
	}
	_, n := rules.SlideSlots(slots, rules.CounterSlot(at, ctr.Window), 0, getSlot, mkSlot)
	return n, nil
}

// read returns a key's slots and revision (0: no such key). Slots of
// another step (the counter's window changed) are dropped: they measure
// another window.
func (b *counterBucket) read(ctx context.Context, k string, step time.Duration) ([]slot, uint64, error) {
	e, err := b.kv.Get(ctx, k)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, err
	}
	slots, vstep, err := decode(e.Value())
	if err != nil || vstep != step {
		return nil, e.Revision(), nil // rewritten whole by the next Add
	}
	return slots, e.Revision(), nil
}

// Prepare makes the buckets of ctrs (or updates their TTL to the
// counters' windows) now, when rules are loaded, so that the first event
// counted in each after a start or a change does not make its bucket
// within its callback's deadline. A bucket not made here is made on
// first use, as without Prepare.
func (c *Counters) Prepare(ctx context.Context, ctrs []rules.Counter) error {
	var errs []error
	for _, ctr := range ctrs {
		if _, err := c.bucket(ctx, ctr); err != nil {
			errs = append(errs, fmt.Errorf("counter %s: %w", ctr.Name, err))
		}
	}
	return errors.Join(errs...)
}

// bucket returns the counter's bucket, made (or its TTL updated to the
// counter's window) on first use.
func (c *Counters) bucket(ctx context.Context, ctr rules.Counter) (*counterBucket, error) {
	c.mu.Lock()
	b := c.kvs[ctr.Name]
	c.mu.Unlock()
	if b != nil && b.window == ctr.Window {
		return b, nil
	}
	c.make.Lock()
	defer c.make.Unlock()
	c.mu.Lock()
	b = c.kvs[ctr.Name]
	c.mu.Unlock()
	if b != nil && b.window == ctr.Window {
		return b, nil // made while this caller waited
	}
	kv, err := c.buckets.StateBucket(ctx, BucketSuffix(ctr.Name), jetstream.KeyValueConfig{
		Description: "friendflow counter " + ctr.Name + ", window " + ctr.Window.String(),
		History:     1,
		// A key not written for a whole window holds no step inside it:
		// the bucket-level TTL bounds the storage by the window (per-key
		// TTLs raced in the once bucket).
		TTL:      ctr.Window,
		MaxBytes: c.MaxBytes,
	})
	if err != nil {
		return nil, err
	}
	b = &counterBucket{window: ctr.Window, kv: kv}
	c.mu.Lock()
	c.kvs[ctr.Name] = b
	c.mu.Unlock()
	return b, nil
}

// BucketSuffix is the name of a counter's bucket under the namespace.
func BucketSuffix(counter string) string { return "counter_" + counter }

// maxPlainKey is the longest key stored under its own (encoded) name;
// a longer one is stored under its hash.
const maxPlainKey = 120

// KVKey is the bucket key of a counter key: base64url of it (reversible,
// and a valid key-value key whatever the key holds), or '=' and its
// SHA-256 when long.
func KVKey(key string) string {
	if len(key) <= maxPlainKey {
		if key == "" {
			return "="
		}
		return base64.RawURLEncoding.EncodeToString([]byte(key))
	}
	sum := sha256.Sum256([]byte(key))
	return "=" + hex.EncodeToString(sum[:])
}

// slot is one step's count.
type slot struct {
	n   int
	num int64
}

func getSlot(s slot) (int64, int)  { return s.num, s.n }
func mkSlot(num int64, n int) slot { return slot{n: n, num: num} }
func errValue(what string) error   { return fmt.Errorf("counter value: %s", what) }

// valueVersion starts every value: the layout below.
const valueVersion = 1

// encode writes a key's value: the version, the step in nanoseconds, then
// each slot's number and count, all uvarints. At most rules.CounterSlots
// (+ a few ahead) slots: a few hundred bytes.
func encode(b []byte, step time.Duration, slots []slot) []byte {
	b = append(b, valueVersion)
	b = binary.AppendUvarint(b, uint64(step))
	for _, s := range slots {
		b = binary.AppendUvarint(b, uint64(s.num))
		b = binary.AppendUvarint(b, uint64(s.n))
	}
	return b
}

func decode(v []byte) ([]slot, time.Duration, error) {
	if len(v) == 0 || v[0] != valueVersion {
		return nil, 0, errValue("unknown version")
	}
	v = v[1:]
	step, n := binary.Uvarint(v)
	if n <= 0 {
		return nil, 0, errValue("bad step")
	}
	v = v[n:]
	var slots []slot
	for len(v) > 0 {
		num, n1 := binary.Uvarint(v)
		if n1 <= 0 {
			return nil, 0, errValue("bad slot")
		}
		cnt, n2 := binary.Uvarint(v[n1:])
		if n2 <= 0 {
			return nil, 0, errValue("bad count")
		}
		v = v[n1+n2:]
		slots = append(slots, slot{n: int(cnt), num: int64(num)})
	}
	return slots, time.Duration(step), nil
}
