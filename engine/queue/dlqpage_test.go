package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// seedDead stores n dead letters straight on the dead-letter subject, as
// bury would: dead-letter i has rule r<i%3>, kind k<i%2>, an error
// naming i, and died i minutes after base.
func seedDead(t testing.TB, q *Queue, n int, base time.Time) {
	t.Helper()
	for i := range n {
		job := mkJob(fmt.Sprintf("dl-%05d", i), "ok")
		job.Rule, job.Action = fmt.Sprintf("r%d", i%3), fmt.Sprintf("k%d", i%2)
		dl := DeadLetter{
			ID: job.ID, Rule: job.Rule, Action: job.Action, Reason: "permanent failure",
			LastError: fmt.Sprintf("Upstream said NO to %d", i), Attempts: 1,
			DeadAt: base.Add(time.Duration(i) * time.Minute), Job: job,
		}
		if err := q.publishDead(dl, "seed:"+job.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// pageAll follows a query's cursors to the end, checking every page's size.
func pageAll(t *testing.T, q *Queue, dq DeadQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("cursor never ends")
		}
		page, err := q.ListDead(context.Background(), dq)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.DeadLetters) > dq.Limit {
			t.Fatalf("page of %d, limit %d", len(page.DeadLetters), dq.Limit)
		}
		for _, dl := range page.DeadLetters {
			ids = append(ids, dl.ID)
		}
		if page.Next == "" {
			return ids
		}
		dq.Cursor = page.Next
	}
}

func wantIDs(pick func(i int) bool, n int, newest bool) []string {
	var out []string
	for i := range n {
		if pick(i) {
			out = append(out, fmt.Sprintf("dl-%05d", i))
		}
	}
	if newest {
		slices.Reverse(out)
	}
	return out
}

func TestListDeadPagesAndFilters(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	const n = 250
	seedDead(t, q, n, base)
	// Gaps, as replays and drops leave them.
	if got, err := q.Drop(context.Background(), []string{"dl-00000", "dl-00100", "dl-00249"}); err != nil || got != 3 {
		t.Fatalf("drop: %d, %v", got, err)
	}
	gone := func(i int) bool { return i == 0 || i == 100 || i == 249 }
	for _, tc := range []struct {
		name string
		dq   DeadQuery
		pick func(int) bool
	}{
		{"all", DeadQuery{Limit: 40}, func(int) bool { return true }},
		{"all newest", DeadQuery{Limit: 33, Newest: true}, func(int) bool { return true }},
		{"rule", DeadQuery{Limit: 7, DeadFilter: DeadFilter{Rule: "r1"}}, func(i int) bool { return i%3 == 1 }},
		{"kind newest", DeadQuery{Limit: 9, Newest: true, DeadFilter: DeadFilter{Kind: "k0"}}, func(i int) bool { return i%2 == 0 }},
		{"error any case", DeadQuery{Limit: 5, DeadFilter: DeadFilter{Error: "no to 12"}}, func(i int) bool { return strings.HasPrefix(fmt.Sprint(i), "12") }},
		{"time range", DeadQuery{Limit: 10, DeadFilter: DeadFilter{Since: base.Add(90 * time.Minute), Until: base.Add(120 * time.Minute)}},
			func(i int) bool { return i >= 90 && i < 120 }},
		{"everything at once", DeadQuery{Limit: 2, DeadFilter: DeadFilter{Rule: "r2", Kind: "k1", Since: base.Add(50 * time.Minute)}},
			func(i int) bool { return i%3 == 2 && i%2 == 1 && i >= 50 }},
		{"none", DeadQuery{Limit: 10, DeadFilter: DeadFilter{Rule: "nope"}}, func(int) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pageAll(t, q, tc.dq)
			want := wantIDs(func(i int) bool { return !gone(i) && tc.pick(i) }, n, tc.dq.Newest)
			if !slices.Equal(got, want) {
				t.Errorf("got %d ids %v\nwant %d ids %v", len(got), got, len(want), want)
			}
		})
	}
	page, err := q.ListDead(context.Background(), DeadQuery{Limit: 1})
	if err != nil || page.Total != n-3 || page.Next == "" {
		t.Errorf("first page: total %d next %q err %v, want total %d and a cursor", page.Total, page.Next, err, n-3)
	}
	// Each walk reads through a consumer of its own and deletes it: none
	// is left behind to hold the server's memory until it expires.
	info, err := q.dead.Info(context.Background())
	if err != nil || info.State.Consumers != 0 {
		t.Errorf("the dead-letter stream has %d consumers after the walks (%v), want 0", info.State.Consumers, err)
	}
	for _, bad := range []string{"x", "f12", "f1-x", "z1-2", "b-1-2"} {
		if _, err := q.ListDead(context.Background(), DeadQuery{Cursor: bad}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: err %v, want ErrBadCursor", bad, err)
		}
	}
}

func TestSweepReplayAndDropByFilter(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	const n = 120
	seedDead(t, q, n, base)
	count := func(f DeadFilter) int {
		t.Helper()
		dq := DeadQuery{Limit: MaxDeadPage, DeadFilter: f}
		return len(pageAll(t, q, dq))
	}

	dry, err := q.ReplayWhere(ctx, DeadSweep{DeadFilter: DeadFilter{Rule: "r2"}, DryRun: true})
	if err != nil || dry.N != n/3 || dry.Next != "" {
		t.Fatalf("dry run: %+v %v, want %d", dry, err, n/3)
	}
	if got := count(DeadFilter{}); got != n {
		t.Fatalf("a dry run changed the store: %d dead letters", got)
	}

	// In steps of 7, as the CLI goes, reporting progress between them.
	replayed, steps := 0, 0
	s := DeadSweep{DeadFilter: DeadFilter{Rule: "r2"}, Limit: 7}
	for {
		res, err := q.ReplayWhere(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		replayed, steps = replayed+res.N, steps+1
		if res.Next == "" {
			break
		}
		s.Cursor = res.Next
	}
	if replayed != n/3 || steps < n/3/7 {
		t.Fatalf("replayed %d in %d steps, want %d in at least %d", replayed, steps, n/3, n/3/7)
	}
	if got := count(DeadFilter{Rule: "r2"}); got != 0 {
		t.Errorf("%d r2 dead letters left after the replay", got)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Jobs != n/3 {
		t.Errorf("jobs waiting after replay: %d (%v), want %d", st.Jobs, err, n/3)
	}

	drop, err := q.DropWhere(ctx, DeadSweep{DeadFilter: DeadFilter{Kind: "k0"}})
	if err != nil {
		t.Fatal(err)
	}
	left := wantIDs(func(i int) bool { return i%3 != 2 && i%2 == 1 }, n, false)
	if want := n/2 - n/6; drop.N != want {
		t.Errorf("dropped %d, want %d", drop.N, want)
	}
	if got := pageAll(t, q, DeadQuery{Limit: 50}); !slices.Equal(got, left) {
		t.Errorf("left %v, want %v", got, left)
	}

	all, err := q.DropWhere(ctx, DeadSweep{DryRun: true})
	if err != nil || all.N != len(left) {
		t.Errorf("drop all, dry run: %+v %v, want %d", all, err, len(left))
	}
	all, err = q.DropWhere(ctx, DeadSweep{})
	if err != nil || all.N != len(left) || count(DeadFilter{}) != 0 {
		t.Errorf("drop all: %+v %v, want %d and none left", all, err, len(left))
	}
}
