package queue

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// TestRetryAfterCappedByMaxBackoff runs a real webhook through the real
// queue against a receiver that always answers 503 with a Retry-After of a
// day, or of more years than a time.Duration holds: the waits are capped by
// the job's max_backoff and each counts as an attempt, so the job reaches
// the dead letters after its attempts instead of being parked.
func TestRetryAfterCappedByMaxBackoff(t *testing.T) {
	for _, retryAfter := range []string{"86400", "99999999999"} {
		t.Run(retryAfter, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()

			reg := &actions.Registry{}
			if err := reg.Register(&actions.Webhook{}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q, err := Open(ctx, Config{DataDir: t.TempDir(), Registry: reg, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
			runTest(t, q)

			job := mkJob("limited", "")
			job.Action = "webhook"
			job.Params = map[string]any{"url": srv.URL}
			job.Retry = Retry{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
			enqueue(t, q, "cb-limited", job)

			var dead []DeadLetter
			eventually(t, 15*time.Second, "the job in the dead letters", func() bool {
				dead, err = q.DeadLetters(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return len(dead) == 1
			})
			if d := dead[0]; d.ID != "limited" || d.Reason != "attempts exhausted" || d.Attempts != 3 {
				t.Errorf("dead letter %+v, want limited, attempts exhausted after 3", d)
			}
			if n := hits.Load(); n != 3 {
				t.Errorf("the receiver got %d requests, want 3 (one per attempt)", n)
			}
			// The dead letter is stored before its message is
			// acknowledged: the work queue empties just after.
			eventually(t, 10*time.Second, "the work queue drained", func() bool { return drained(t, q) })
		})
	}
}
