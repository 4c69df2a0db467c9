package queue

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keepers returns how many keepers the jobs stream holds.
func keepers(t *testing.T, q *Queue) int {
	t.Helper()
	info, err := q.jobs.Info(context.Background(), jetstream.WithSubjectFilter(q.names.keep))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[q.names.keep])
}

// newestBlock is the index of the jobs stream's newest block file in the
// embedded store under dir (the file store names them <index>.blk).
func newestBlock(t *testing.T, dir string, q *Queue) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", q.names.jobsStream, "msgs", "*.blk"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no block files of the jobs stream under %s (%v)", dir, err)
	}
	newest := 0
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".blk"))
		if err != nil {
			t.Fatalf("block file %s: %v", f, err)
		}
		newest = max(newest, n)
	}
	return newest
}

// TestKeeperKeepsTheBlockFile: callbacks stored and run one at a time each
// empty the stream; with the keeper, that no longer replaces its block
// file by a new one, and the keeper never reaches a worker.
func TestKeeperKeepsTheBlockFile(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q := openTest(t, dir, s, nil)
	runTest(t, q)
	first := newestBlock(t, dir, q)
	for i := range 5 {
		id := "k" + strconv.Itoa(i)
		enqueue(t, q, "cb-"+id, mkJob(id, "ok"))
		eventually(t, 10*time.Second, "job "+id+" done", func() bool { return s.doneCount(id) == 1 })
		eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, q) })
	}
	if got := newestBlock(t, dir, q); got != first {
		t.Errorf("newest block file %d.blk after 5 drains, want still %d.blk", got, first)
	}
	if n := keepers(t, q); n != 1 {
		t.Errorf("%d keepers, want 1", n)
	}
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 0 || st.Jobs != 0 || st.DeadLetters != 0 {
		t.Errorf("stats %+v: the keeper counted as a job, or dead-lettered", st)
	}
}

// TestKeeperCycles: a keeper from Open, removed after keepEvery bytes of
// job messages, and published again keepGap bytes later.
func TestKeeperCycles(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	eventually(t, 10*time.Second, "the keeper of Open", func() bool { return keepers(t, q) == 1 })
	q.published(keepEvery - 1)
	if n := keepers(t, q); n != 1 {
		t.Fatalf("%d keepers before keepEvery bytes, want 1", n)
	}
	q.published(1)
	eventually(t, 10*time.Second, "the keeper removed", func() bool {
		q.keeperMu.Lock()
		defer q.keeperMu.Unlock()
		return !q.keeper.purging && keepers(t, q) == 0
	})
	q.published(keepGap - 1)
	if n := keepers(t, q); n != 0 {
		t.Fatalf("%d keepers before keepGap bytes, want 0", n)
	}
	q.published(1)
	eventually(t, 10*time.Second, "a keeper again", func() bool { return keepers(t, q) == 1 })
}

// TestKeeperDeliveredIsNotAJob: a consumer without the filter (as an older
// release creates it) delivers the keeper; it is acknowledged, not
// dead-lettered, and the next Open restores the filter and a keeper.
func TestKeeperDeliveredIsNotAJob(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q := openTest(t, dir, s, nil)
	ctx := context.Background()
	cfg := q.cons.CachedInfo().Config
	cfg.FilterSubject = ""
	if _, err := q.jobs.CreateOrUpdateConsumer(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	runTest(t, q)
	eventually(t, 10*time.Second, "keeper acknowledged", func() bool { return keepers(t, q) == 0 })
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeadLetters != 0 {
		t.Errorf("%d dead letters, want 0", st.DeadLetters)
	}
	if err := q.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	q2 := openTest(t, dir, s, nil)
	ci, err := q2.cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f := ci.Config.FilterSubject; f != q2.names.jobsSubjects {
		t.Errorf("consumer filter %q after Open, want %q", f, q2.names.jobsSubjects)
	}
	eventually(t, 10*time.Second, "a keeper again", func() bool { return keepers(t, q2) == 1 })
}
