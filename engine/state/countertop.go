package state

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendflow/friendflow/rules"
)

// Bounds of a Top scan.
const (
	// DefaultTopScan is how many keys a Top examines unless told.
	DefaultTopScan = 10000
	// MaxTopScan bounds the keys one Top examines, whatever it is told.
	MaxTopScan = 100000
	// MaxTop bounds the keys one Top keeps.
	MaxTop = 100
	// topBatch is how many keys one fetch from the bucket brings: the
	// most a Top holds in memory at once, with its heap.
	topBatch = 256
)

// KeyCount is one counter key's count.
type KeyCount struct {
	// Key is the counter key; a key longer than 120 bytes is stored under
	// its SHA-256 only, and Key is then that hash in hex, with Hashed set.
	Key    string `json:"key"`
	Hashed bool   `json:"hashed,omitempty"`
	Count  int    `json:"count"`
}

// Top is the busiest keys of a counter, as far as a bounded scan saw.
type Top struct {
	Keys []KeyCount `json:"keys"` // busiest first; ties by key
	// Examined is how many keys the scan read; Total how many the bucket
	// holds. Cut says the scan stopped before the end: the keys examined
	// are the most recently counted ones (a key's only value moves to the
	// end of the bucket's stream each time it is counted, and a busy key
	// is counted often), so a busy key is missed only if it was not
	// counted while Examined other keys were.
	Examined int    `json:"examined"`
	Total    uint64 `json:"total"`
	Cut      bool   `json:"cut,omitempty"`
}

// TopKeys returns the n busiest keys of ctr at at, examining at most scan
// keys (0: DefaultTopScan), the most recently counted first in weight:
// the scan reads the tail of the bucket's stream through a pull consumer,
// topBatch keys a request, keeping n in a heap. It never holds the bucket.
func (c *Counters) TopKeys(ctx context.Context, ctr rules.Counter, n, scan int, at time.Time) (Top, error) {
	n = min(max(n, 1), MaxTop)
	if scan <= 0 {
		scan = DefaultTopScan
	}
	scan = min(scan, MaxTopScan)
	b, err := c.bucket(ctx, ctr)
	if err != nil {
		return Top{}, err
	}
	st, err := b.kv.Status(ctx)
	if err != nil {
		return Top{}, fmt.Errorf("counter %s: %w", ctr.Name, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return Top{}, fmt.Errorf("counter %s: no stream status", ctr.Name)
	}
	info := bs.StreamInfo()
	top := Top{Total: info.State.Msgs}
	if top.Total == 0 {
		return top, nil
	}
	stream, err := c.buckets.JetStream().Stream(ctx, info.Config.Name)
	if err != nil {
		return Top{}, fmt.Errorf("counter %s: %w", ctr.Name, err)
	}
	cons, err := tailConsumer(ctx, stream, b.kv.Bucket(), info.State, scan)
	if err != nil {
		return Top{}, fmt.Errorf("counter %s: %w", ctr.Name, err)
	}
	defer func() {
		// The consumer is ephemeral and goes by itself when idle; deleting
		// it now frees it at once.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	h := &keyHeap{}
	step := ctr.Step()
	cur := rules.CounterSlot(at, ctr.Window)
	prefix := "$KV." + b.kv.Bucket() + "."
	pending := cons.CachedInfo().NumPending
	for top.Examined < scan && pending > 0 {
		batch, err := cons.FetchNoWait(min(topBatch, scan-top.Examined))
		if err != nil {
			return Top{}, fmt.Errorf("counter %s: %w", ctr.Name, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			top.Examined++
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
			}
			if op := msg.Headers().Get("KV-Operation"); op != "" {
				continue // a delete or purge marker
			}
			slots, vstep, err := decode(msg.Data())
			if err != nil || vstep != step {
				continue
			}
			_, cnt := rules.SlideSlots(slots, cur, 0, getSlot, mkSlot)
			if cnt > 0 {
				h.offer(keyOf(strings.TrimPrefix(msg.Subject(), prefix), cnt), n)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return Top{}, fmt.Errorf("counter %s: %w", ctr.Name, err)
		}
		if got == 0 {
			break
		}
	}
	top.Cut = uint64(top.Examined) < top.Total
	top.Keys = h.sorted()
	return top, nil
}

// tailConsumer makes an ephemeral pull consumer of the bucket's stream
// that starts where at most scan keys are left, and at least 3/4 of scan
// where it can: the most recently written. Sequences have gaps (a key
// rewritten leaves one, and busy keys leave many), so the start is
// searched for, each try a consumer whose pending count says how many
// keys it would read: interpolation and bisection by turns, at most
// maxTailTries.
func tailConsumer(ctx context.Context, s jetstream.Stream, bucket string, st jetstream.StreamState, scan int) (jetstream.Consumer, error) {
	mk := func(start uint64) (jetstream.Consumer, uint64, error) {
		cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       max(start, 1),
			AckPolicy:         jetstream.AckNonePolicy,
			FilterSubject:     "$KV." + bucket + ".>",
			InactiveThreshold: 30 * time.Second,
			MemoryStorage:     true,
			Replicas:          1,
		})
		if err != nil {
			return nil, 0, err
		}
		return cons, cons.CachedInfo().NumPending, nil
	}
	want := uint64(scan)
	if st.Msgs <= want {
		c, _, err := mk(st.FirstSeq)
		return c, err
	}
	drop := func(c jetstream.Consumer) {
		if c != nil {
			_ = s.DeleteConsumer(ctx, c.CachedInfo().Name)
		}
	}
	// pending(lo) = loN > want >= hiN = pending(hi); best starts at hi.
	lo, loN, hi, hiN := st.FirstSeq, st.Msgs, st.LastSeq+1, uint64(0)
	var best jetstream.Consumer
	for try := 0; try < maxTailTries && hi-lo > 1 && hiN*4 < want*3; try++ {
		at := lo + (hi-lo)/2
		if try%2 == 0 { // pending taken as linear in the sequence
			at = hi - max((want-hiN)*(hi-lo)/(loN-hiN), 1)
		}
		at = min(max(at, lo+1), hi-1)
		c, n, err := mk(at)
		if err != nil {
			drop(best)
			return nil, err
		}
		if n > want {
			drop(c)
			lo, loN = at, n
			continue
		}
		drop(best)
		best, hi, hiN = c, at, n
	}
	if best != nil {
		return best, nil
	}
	c, _, err := mk(hi)
	return c, err
}

// maxTailTries bounds the consumers tailConsumer makes to find its start.
const maxTailTries = 8

// keyOf decodes a bucket key (KVKey) back into a KeyCount.
func keyOf(k string, n int) KeyCount {
	switch {
	case k == "=":
		return KeyCount{Count: n}
	case strings.HasPrefix(k, "="):
		return KeyCount{Key: k[1:], Hashed: true, Count: n}
	}
	raw, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return KeyCount{Key: k, Hashed: true, Count: n}
	}
	return KeyCount{Key: string(raw), Count: n}
}

// keyHeap is a min-heap of the busiest keys seen: its root is the one to
// drop first.
type keyHeap []KeyCount

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return less(h[i], h[j]) }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(KeyCount)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// less orders keys from least to most busy: a lower count, then a later
// key.
func less(a, b KeyCount) bool {
	if a.Count != b.Count {
		return a.Count < b.Count
	}
	return a.Key > b.Key
}

// offer keeps k if it is among the n busiest seen.
func (h *keyHeap) offer(k KeyCount, n int) {
	if h.Len() < n {
		heap.Push(h, k)
		return
	}
	if less((*h)[0], k) {
		(*h)[0] = k
		heap.Fix(h, 0)
	}
}

// sorted returns the keys, busiest first.
func (h *keyHeap) sorted() []KeyCount {
	out := slices.Clone(*h)
	slices.SortFunc(out, func(a, b KeyCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if out == nil {
		out = []KeyCount{}
	}
	return out
}
