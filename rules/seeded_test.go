package rules

import (
	"context"
	"testing"
	"time"
)

// countingStore counts the reads of a MemCounters.
type countingStore struct {
	*MemCounters
	gets int
}

func (c *countingStore) Get(ctx context.Context, ctr Counter, key string, at time.Time) (int, error) {
	c.gets++
	return c.MemCounters.Get(ctx, ctr, key, at)
}

// TestSeededCounters: a replay starts each key from the base's count,
// read once and never written, placed at the first event's time, so it
// leaves the window a window later; a key first seen after that is not
// read.
func TestSeededCounters(t *testing.T) {
	ctx := context.Background()
	ctr := Counter{Name: "by_sender", Window: 10 * time.Minute}
	t0 := time.Unix(1_700_000_000, 0)
	base := &countingStore{MemCounters: NewMemCounters()}
	for range 5 {
		_, _ = base.Add(ctx, ctr, "eve", t0)
	}
	for range 4 {
		_, _ = base.Add(ctx, ctr, "late", t0)
	}
	s := NewSeededCounters(base)
	want := func(n int, err error, w int) {
		t.Helper()
		if err != nil || n != w {
			t.Fatalf("count %d (%v), want %d", n, err, w)
		}
	}
	n, err := s.Add(ctx, ctr, "eve", t0)
	want(n, err, 6)
	n, err = s.Add(ctx, ctr, "eve", t0.Add(time.Minute))
	want(n, err, 7)
	n, err = s.Get(ctx, ctr, "bob", t0.Add(time.Minute))
	want(n, err, 0)
	if base.gets != 2 {
		t.Fatalf("%d reads of the base, want 2 (eve and bob, once each)", base.gets)
	}
	// A window after the first event, eve's seeded 5 and first replayed
	// event have left it; "late" starts from zero, unread.
	n, err = s.Add(ctx, ctr, "eve", t0.Add(ctr.Window+time.Second))
	want(n, err, 2)
	n, err = s.Add(ctx, ctr, "late", t0.Add(ctr.Window+time.Second))
	want(n, err, 1)
	if base.gets != 2 {
		t.Fatalf("%d reads of the base, want 2", base.gets)
	}
	if got, _ := base.Get(ctx, ctr, "eve", t0); got != 5 || s.Err() != nil {
		t.Fatalf("the base was written: eve %d, err %v", got, s.Err())
	}
}
