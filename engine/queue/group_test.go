package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// slowKind takes a while and records how many of it run at once.
type slowKind struct {
	running, peak atomic.Int32
	done          atomic.Int32
}

func (k *slowKind) Spec() actions.Spec { return actions.Spec{Name: "slow"} }
func (k *slowKind) Do(ctx context.Context, _ actions.Job, _ map[string]any) error {
	n := k.running.Add(1)
	for {
		p := k.peak.Load()
		if n <= p || k.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond)
	k.running.Add(-1)
	k.done.Add(1)
	return nil
}

// TestGroupedCallbacksRunInParallel: concurrent callbacks share messages
// (group commit), yet their jobs must use every worker, not run one after
// another inside one message.
func TestGroupedCallbacksRunInParallel(t *testing.T) {
	k := &slowKind{}
	reg := &actions.Registry{}
	if err := reg.Register(k); err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), Config{DataDir: t.TempDir(), Registry: reg, Workers: 8, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	const callbacks = 64
	var wg sync.WaitGroup
	for i := range callbacks {
		wg.Go(func() {
			job := Job{}
			job.ID, job.Action = fmt.Sprintf("cb%d-0", i), "slow"
			if err := q.Enqueue(context.Background(), fmt.Sprintf("cb%d", i), []Job{job}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d callbacks stored in %d messages", callbacks, st.Messages)
	runTest(t, q)
	eventually(t, 10*time.Second, "every job done", func() bool { return k.done.Load() == callbacks })
	if p := k.peak.Load(); p < 6 {
		t.Fatalf("at most %d jobs ran at once with 8 workers", p)
	}
	if p := k.peak.Load(); p > 8 {
		t.Fatalf("%d jobs ran at once with 8 workers", p)
	}
}
