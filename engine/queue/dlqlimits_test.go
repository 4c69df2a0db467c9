package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// bigJob is a job that fails permanently at once, carrying pad bytes so
// that a few of them fill a small dead-letter stream.
func bigJob(id string, pad int) Job {
	j := mkJob(id, "permanent")
	j.Event = []byte(`{"AddWording":"` + strings.Repeat("x", pad) + `"}`)
	return j
}

func stats(t *testing.T, q *Queue) Stats {
	t.Helper()
	s, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeadLetterMaxBytesDiscardsAndCounts: past DeadMaxBytes the oldest
// dead letters go, and Stats counts them; replays and drops are not
// counted as discards.
func TestDeadLetterMaxBytesDiscardsAndCounts(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, func(c *Config) { c.DeadMaxBytes = 8 << 10 })
	runTest(t, q)
	const n = 20
	for i := range n {
		enqueue(t, q, fmt.Sprintf("cb%d", i), bigJob(fmt.Sprintf("big%02d", i), 1500))
	}
	eventually(t, 10*time.Second, "every job dead or discarded", func() bool {
		st := stats(t, q)
		return st.DeadLetters+st.DeadDiscarded == n && st.Messages == 0
	})
	st := stats(t, q)
	if st.DeadDiscarded == 0 || st.DeadLetters == 0 {
		t.Fatalf("%d dead letters, %d discarded: want both above 0 with an 8 KiB limit", st.DeadLetters, st.DeadDiscarded)
	}
	dls, err := q.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A drop and a replay remove dead letters without counting as discards.
	if _, err := q.Drop(context.Background(), []string{dls[0].ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Replay(context.Background(), []string{dls[1].ID}); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	eventually(t, 10*time.Second, "the replayed job dead again", func() bool { return len(s.callTimes(dls[1].ID)) == 2 })
	eventually(t, 10*time.Second, "its dead letter back", func() bool {
		_, err := q.DeadLetter(context.Background(), dls[1].ID)
		return err == nil
	})
	if after := stats(t, q); after.DeadDiscarded != st.DeadDiscarded {
		t.Errorf("discards went from %d to %d after a drop and a replay", st.DeadDiscarded, after.DeadDiscarded)
	}
	if _, err := q.Drop(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if after := stats(t, q); after.DeadDiscarded != st.DeadDiscarded || after.DeadLetters != 0 {
		t.Errorf("after drop --all: %d dead letters, %d discarded (was %d)", after.DeadLetters, after.DeadDiscarded, st.DeadDiscarded)
	}
}

// TestDeadLetterMaxAgeDiscardsAndCounts: dead letters older than
// DeadMaxAge go, and are counted.
func TestDeadLetterMaxAgeDiscardsAndCounts(t *testing.T) {
	s := newScript()
	q := openTest(t, t.TempDir(), s, func(c *Config) { c.DeadMaxAge = time.Second })
	runTest(t, q)
	enqueue(t, q, "cb", mkJob("old1", "permanent"), mkJob("old2", "permanent"))
	eventually(t, 10*time.Second, "both dead letters discarded by age", func() bool {
		st := stats(t, q)
		return st.DeadLetters == 0 && st.DeadDiscarded == 2
	})
}

// TestLoweredDeadLetterLimitsApplyAtOpen: Open updates the limits of an
// existing stream, and what the lower limit discards at once is counted.
func TestLoweredDeadLetterLimitsApplyAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	q := openTest(t, dir, s, nil)
	runTest(t, q)
	for i := range 6 {
		enqueue(t, q, fmt.Sprintf("cb%d", i), bigJob(fmt.Sprintf("j%d", i), 2000))
	}
	eventually(t, 10*time.Second, "six dead letters", func() bool { return stats(t, q).DeadLetters == 6 })
	if err := q.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	q = openTest(t, dir, s, func(c *Config) { c.DeadMaxBytes = 5 << 10 })
	info, err := q.dead.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxBytes != 5<<10 || info.Config.MaxAge != DefaultDeadMaxAge {
		t.Errorf("dead stream limits %d bytes, %v: not updated", info.Config.MaxBytes, info.Config.MaxAge)
	}
	st := stats(t, q)
	if st.DeadLetters >= 6 || st.DeadLetters+st.DeadDiscarded != 6 {
		t.Errorf("after lowering the limit: %d dead letters, %d discarded; want fewer than 6, 6 in all", st.DeadLetters, st.DeadDiscarded)
	}
}

// secretKind declares a secret parameter and a secret field.
type secretKind struct{}

func (secretKind) Spec() actions.Spec {
	return actions.Spec{Name: "secretive", Params: []actions.Param{
		{Name: "url", Type: actions.String},
		{Name: "token", Type: actions.String, Secret: true},
		{Name: "auth", Type: actions.Object, Fields: []actions.Param{
			{Name: "user", Type: actions.String},
			{Name: "password", Type: actions.String, Secret: true},
		}},
	}}
}

var errFlaky = errors.New("upstream said 503")

func (secretKind) Do(_ context.Context, job actions.Job, _ map[string]any) error {
	if job.Attempt < 3 {
		return actions.Transient(fmt.Errorf("attempt %d: %w", job.Attempt, errFlaky), 0)
	}
	return actions.Permanent(fmt.Errorf("attempt %d: upstream said 400", job.Attempt))
}

// TestDeadLetterShowsEveryAttemptAndRedactsSecrets: a dead letter keeps
// each failed attempt's error across retries (each in a message of its
// own), and DeadLetter shows it with secret values redacted; the stored
// job keeps them for a replay.
func TestDeadLetterShowsEveryAttemptAndRedactsSecrets(t *testing.T) {
	reg := &actions.Registry{}
	if err := reg.Register(secretKind{}); err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), Config{DataDir: t.TempDir(), Registry: reg, Logger: testLogger(t),
		Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	runTest(t, q)
	job := Job{Job: actions.Job{ID: "s1", Rule: "crm", Action: "secretive",
		Params: map[string]any{"url": "https://crm.example/hook", "token": "hunter2",
			"auth": map[string]any{"user": "bot", "password": "hunter3"}},
		Event: []byte(`{"From_Account":"alice","To_Account":"bob"}`)}}
	enqueue(t, q, "cb", job)
	var dl DeadLetter
	eventually(t, 10*time.Second, "the dead letter", func() bool {
		dl, err = q.DeadLetter(context.Background(), "s1")
		return err == nil
	})
	if dl.Rule != "crm" || dl.Action != "secretive" || dl.Attempts != 3 || dl.Reason != "permanent failure" {
		t.Errorf("dead letter %+v", dl)
	}
	if len(dl.Job.Errors) != 3 {
		t.Fatalf("errors %+v, want one per attempt", dl.Job.Errors)
	}
	for i, e := range dl.Job.Errors {
		want := "attempt " + fmt.Sprint(i+1) + ": upstream said "
		if e.Attempt != i+1 || !strings.HasPrefix(e.Error, want) || e.At.IsZero() {
			t.Errorf("error %d: %+v, want attempt %d starting %q", i, e, i+1, want)
		}
	}
	p := dl.Job.Params
	if p["token"] != actions.Redacted || p["auth"].(map[string]any)["password"] != actions.Redacted ||
		p["url"] != "https://crm.example/hook" || p["auth"].(map[string]any)["user"] != "bot" {
		t.Errorf("shown params %v: secrets must be redacted, the rest shown", p)
	}
	if string(dl.Job.Event) != `{"From_Account":"alice","To_Account":"bob"}` {
		t.Errorf("event %s", dl.Job.Event)
	}
	stored, err := q.pickDead(context.Background(), []string{"s1"})
	if err != nil || stored[0].dl.Job.Params["token"] != "hunter2" {
		t.Errorf("stored dead letter lost its parameters: %v %v", stored, err)
	}
	var unknown *UnknownIDsError
	if _, err := q.DeadLetter(context.Background(), "nope"); !errors.As(err, &unknown) || unknown.IDs[0] != "nope" {
		t.Errorf("DeadLetter(nope) = %v", err)
	}
}

func TestAppendErrorBoundsTheHistory(t *testing.T) {
	var errs []AttemptError
	for i := range 30 {
		errs = appendError(errs, AttemptError{Attempt: i + 1, Error: strings.Repeat("é", 600)})
	}
	if len(errs) != maxErrors || errs[0].Attempt != 11 || errs[maxErrors-1].Attempt != 30 {
		t.Fatalf("kept attempts %d..%d (%d), want the last %d", errs[0].Attempt, errs[len(errs)-1].Attempt, len(errs), maxErrors)
	}
	if e := errs[0].Error; len(e) > maxErrorLen+len("…") || !strings.HasSuffix(e, "é…") {
		t.Errorf("a long error is cut to %d bytes of valid UTF-8: %d bytes, ends %q", maxErrorLen, len(e), e[len(e)-8:])
	}
}
