package state

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
)

func openQueue(t testing.TB, dir string) *queue.Queue {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Config{DataDir: dir, Registry: &actions.Registry{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestCountersAreExactUnderConcurrencyAndSurviveARestart: 16 writers
// counting one key 50 times each lose no increment, each sees a count of
// its own, and a queue reopened on the same data sees the same counts.
func TestCountersAreExactUnderConcurrencyAndSurviveARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	q := openQueue(t, dir)
	c := NewCounters(q)
	var conflicts int
	var mu sync.Mutex
	c.Observe = func(op string, _ time.Duration, n int, err error) {
		if err != nil {
			t.Errorf("%s: %v", op, err)
		}
		mu.Lock()
		conflicts += n
		mu.Unlock()
	}
	ctr := rules.Counter{Name: "requests_by_sender", Window: 10 * time.Minute}
	ctx := context.Background()
	now := time.Now()
	seen := make([]bool, 16*50+1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				n, err := c.Add(ctx, ctr, "eve", now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if n < 1 || n >= len(seen) || seen[n] {
					t.Errorf("count %d seen twice or out of range", n)
				} else {
					seen[n] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// One replica writes a key once at a time, the increments that came
	// meanwhile together: none starts from a revision another replaced.
	if conflicts != 0 {
		t.Errorf("%d compare-and-set conflicts within one replica, want 0", conflicts)
	}
	if n, err := c.Get(ctx, ctr, "eve", now); n != 800 || err != nil {
		t.Fatalf("Get: %d, %v; want 800", n, err)
	}
	if n, _ := c.Add(ctx, ctr, "a key/with spaces and ünïcode", now); n != 1 {
		t.Errorf("another key: %d", n)
	}
	if err := q.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	q = openQueue(t, dir)
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	c = NewCounters(q)
	if n, err := c.Get(ctx, ctr, "eve", now); n != 800 || err != nil {
		t.Fatalf("after a restart: %d, %v; want 800", n, err)
	}
	if n, _ := c.Add(ctx, ctr, "eve", now.Add(11*time.Minute)); n != 1 {
		t.Errorf("a window later: %d, want 1", n)
	}
	// Another window measures another thing: its counts start again.
	ctr.Window = time.Hour
	if n, err := c.Add(ctx, ctr, "eve", now.Add(11*time.Minute)); n != 1 || err != nil {
		t.Errorf("after the window changed: %d, %v; want 1", n, err)
	}
}

// TestCounterIncrementLeavingItsTurn: an increment whose context ends
// while it waits for the write of its key under way is not counted, and
// the increments after it are.
func TestCounterIncrementLeavingItsTurn(t *testing.T) {
	q := openQueue(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	c := NewCounters(q)
	ctr := rules.Counter{Name: "requests_by_sender", Window: 10 * time.Minute}
	ctx := context.Background()
	now := time.Now()
	b, err := c.bucket(ctx, ctr)
	if err != nil {
		t.Fatal(err)
	}
	k := KVKey("eve")
	// A write of eve under way: this test's, held until the others queued.
	lead := &increment{ctx: ctx, slot: rules.CounterSlot(now, ctr.Window), done: make(chan struct{})}
	if !b.join(k, lead) {
		t.Fatal("the first increment of a key must write it")
	}
	gone, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() {
		_, err := c.Add(gone, ctr, "eve", now)
		left <- err
	}()
	waiting := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			b.mu.Lock()
			got := len(b.turns[k].waiting)
			b.mu.Unlock()
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d increments waiting, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waiting(1)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("Add with its context cancelled while waiting: %v", err)
	}
	waiting(0)
	stays := make(chan int, 1)
	go func() {
		n, err := c.Add(ctx, ctr, "eve", now)
		if err != nil {
			t.Error(err)
		}
		stays <- n
	}()
	waiting(1)
	batch := b.take(k, lead)
	_, err = b.write(ctx, ctr, k, batch)
	b.finish(k, batch, err)
	if err != nil || lead.n != 1 {
		t.Fatalf("the held write: %d, %v", lead.n, err)
	}
	if n := <-stays; n != 2 {
		t.Errorf("the increment after the one that left: %d, want 2", n)
	}
	if n, err := c.Get(ctx, ctr, "eve", now); n != 2 || err != nil {
		t.Errorf("Get: %d, %v; want 2", n, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.turns) != 0 {
		t.Errorf("%d turns left behind", len(b.turns))
	}
}

// countingBuckets counts the buckets made.
type countingBuckets struct {
	Buckets
	made int
}

func (b *countingBuckets) StateBucket(ctx context.Context, suffix string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	b.made++
	return b.Buckets.StateBucket(ctx, suffix, cfg)
}

// TestCounterBucketsMadeAtLoad: Prepare makes each counter's bucket, so
// counting makes none; a changed window makes it again (its TTL).
func TestCounterBucketsMadeAtLoad(t *testing.T) {
	q := openQueue(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	b := &countingBuckets{Buckets: q}
	c := NewCounters(b)
	ctx := context.Background()
	ctrs := []rules.Counter{{Name: "a", Window: time.Minute}, {Name: "b", Window: time.Hour}}
	if err := c.Prepare(ctx, ctrs); err != nil || b.made != 2 {
		t.Fatalf("Prepare: %v, %d buckets made; want 2", err, b.made)
	}
	for _, ctr := range ctrs {
		if n, err := c.Add(ctx, ctr, "eve", time.Now()); n != 1 || err != nil {
			t.Fatalf("Add %s: %d, %v", ctr.Name, n, err)
		}
	}
	if b.made != 2 {
		t.Errorf("counting made %d more buckets, want none", b.made-2)
	}
	ctrs[0].Window = 2 * time.Minute
	if err := c.Prepare(ctx, ctrs); err != nil || b.made != 3 {
		t.Errorf("Prepare after a window changed: %v, %d buckets made; want 3", err, b.made)
	}
}

func TestKVKey(t *testing.T) {
	long := string(make([]byte, 500))
	for key, want := range map[string]string{"eve": "ZXZl", "": "=", long: "=" + "e6304a473c65ecd0ccffbd2f5925a8f51c44b11f59b66cfcc055e4bb911b8fa0"} {
		if got := KVKey(key); got != want {
			t.Errorf("KVKey(%.10q) = %q, want %q", key, got, want)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	slots := []slot{{n: 3, num: 29_000_000}, {n: 1, num: 29_000_001}}
	got, step, err := decode(encode(nil, 10*time.Second, slots))
	if err != nil || step != 10*time.Second || len(got) != 2 || got[0] != slots[0] || got[1] != slots[1] {
		t.Fatalf("decode: %v %v %v", got, step, err)
	}
	for _, bad := range [][]byte{nil, {2}, {1}, {1, 5, 0x80}} {
		if _, _, err := decode(bad); err == nil {
			t.Errorf("decode(%v) succeeded", bad)
		}
	}
}
