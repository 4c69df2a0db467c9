package queue

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/rules"
)

// The markers outlive the longest delay an action with cancel_on may
// have, or a job would fall due after its pair's marker expired.
func TestCancelMarkersOutliveTheLongestDelay(t *testing.T) {
	if CancelMarkerTTL <= rules.MaxCancelDelay {
		t.Fatalf("markers live %v, delays with cancel_on up to %v", CancelMarkerTTL, rules.MaxCancelDelay)
	}
}

// TestFormat4CarriesCancelOn: a callback with a cancel_on job is written
// in format 4 whatever the queue's layout, its jobs come back with
// CancelOn and Created, and a format 4 message cut short is refused.
func TestFormat4CarriesCancelOn(t *testing.T) {
	a, b := mkJob("a", "ok"), mkJob("b", "ok")
	a.Cancel = &Cancel{On: []string{"Sns.CallbackFriendDelete", "Sns.CallbackBlackListAdd"}, Created: time.Unix(1800000000, 5)}
	a.TraceParent = testTraceParent
	q := &Queue{}
	if l := q.layoutOf([]Job{b}); l != formatV2 {
		t.Fatalf("a callback without cancel_on is written in format %d", l)
	}
	l := q.layoutOf([]Job{b, a})
	if l != formatV4 {
		t.Fatalf("a callback with cancel_on is written in format %d", l)
	}
	body, err := l.callback(nil, "cb", []Job{a, b})
	if err != nil {
		t.Fatal(err)
	}
	data := append(l.header(nil, 2), body...)
	jobs, err := decodeJobs(data)
	if err != nil {
		t.Fatal(err)
	}
	if c := jobs[0].Cancel; c == nil || !slices.Equal(c.On, a.Cancel.On) || !c.Created.Equal(a.Cancel.Created) || jobs[0].TraceParent != testTraceParent {
		t.Errorf("job with cancel_on decoded to %+v", jobs[0])
	}
	if jobs[1].Cancel != nil || jobs[1].ID != "b" {
		t.Errorf("job without cancel_on decoded to %+v", jobs[1])
	}
	for n := 1; n <= 10; n++ {
		if _, err := decodeJobs(data[:len(data)-n]); err == nil {
			t.Errorf("a format 4 message without its last %d bytes decoded", n)
		}
	}
}

// TestGroupsNeverMixFormats: callbacks with and without cancel_on stored
// at the same time share no message (a message has one format), and
// every job comes back as it was stored.
func TestGroupsNeverMixFormats(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, nil)
	var wg sync.WaitGroup
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = "j" + strconv.Itoa(i)
		wg.Go(func() {
			j := mkJob(ids[i], "ok")
			if i%2 == 0 {
				j.Cancel = &Cancel{On: []string{"Sns.CallbackFriendDelete"}, Created: time.Now()}
			}
			enqueue(t, q, "cb-"+j.ID, j)
		})
	}
	wg.Wait()
	runTest(t, q)
	eventually(t, 10*time.Second, "every job done", func() bool {
		for _, id := range ids {
			if s.doneCount(id) != 1 {
				return false
			}
		}
		return true
	})
}

// TestMarkCancelDropsOnlyJobsMadeBefore: a marker cancels the pair's jobs
// (either direction) made before it, for the command they cancel on only;
// a job made after it, another pair's, and a job without cancel_on run.
func TestMarkCancelDropsOnlyJobsMadeBefore(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	ctx := context.Background()
	t0 := time.Now()
	job := func(id string, created time.Time, cancelOn ...string) Job {
		j := mkJob(id, "ok") // alice → bob
		if cancelOn != nil {
			j.Cancel = &Cancel{On: cancelOn, Created: created}
		}
		return j
	}
	if err := q.MarkCancel(ctx, "Sns.CallbackFriendDelete", []Pair{{From: "bob", To: "alice"}, {From: "x", To: "y"}}, t0, "cb-unfriend"); err != nil {
		t.Fatal(err)
	}
	due := []Job{
		job("before", t0.Add(-time.Second), "Sns.CallbackFriendDelete"),
		job("after", t0.Add(time.Second), "Sns.CallbackFriendDelete"),
		job("other-command", t0.Add(-time.Second), "Sns.CallbackBlackListAdd"),
		job("plain", time.Time{}),
	}
	other := job("other-pair", t0.Add(-time.Second), "Sns.CallbackFriendDelete")
	other.Event = []byte(`{"From_Account":"alice","To_Account":"carol"}`)
	due = append(due, other)
	kept, err := q.dropCancelled(due)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range kept {
		ids = append(ids, j.ID)
	}
	if want := []string{"after", "other-command", "plain", "other-pair"}; !slices.Equal(ids, want) {
		t.Errorf("kept %v, want %v", ids, want)
	}
	c, err := q.cancelledBy(ctx, &due[0])
	if err != nil || c == nil || c.Command != "Sns.CallbackFriendDelete" || c.CallbackID != "cb-unfriend" || !c.At.Equal(t0) {
		t.Errorf("cancelledBy = %+v, %v", c, err)
	}
}

// BenchmarkDropCancelledWithout is what a due message whose jobs have no
// cancel_on pays for the feature: a length check per job.
func BenchmarkDropCancelledWithout(b *testing.B) {
	q := &Queue{}
	due := []Job{mkJob("a", "ok"), mkJob("b", "ok"), mkJob("c", "ok")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.dropCancelled(due); err != nil {
			b.Fatal(err)
		}
	}
}
