package queue

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestClusterFailover runs two queues (two friendflow replicas) on a
// three-node cluster with R3 streams, kills the stream leader while jobs
// flow, and checks that every accepted job is done.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	servers, urls := cluster.Servers, cluster.URLs
	s := newScript()
	h := newHookLog()
	queues := make([]*Queue, 2)
	for i := range queues {
		reg := &actions.Registry{}
		if err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		q, err := Open(ctx, Config{URL: urls, Replicas: 3, Registry: reg, Workers: 4, Logger: testLogger(t), Hooks: h.hooks()})
		cancel()
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		queues[i] = q
		runTest(t, q)
	}
	start := time.Now()

	// once: the same keys from both replicas, concurrently.
	checkOnce := func(prefix string) {
		t.Helper()
		for k := range 20 {
			key := fmt.Sprintf("%s-%d", prefix, k)
			var wg sync.WaitGroup
			var firsts atomic.Int32
			for _, q := range queues {
				wg.Go(func() {
					first, err := q.Once(context.Background(), key, time.Hour)
					if err != nil {
						t.Errorf("Once(%s): %v", key, err)
					}
					if first {
						firsts.Add(1)
					}
				})
			}
			wg.Wait()
			if n := firsts.Load(); n != 1 {
				t.Errorf("Once(%s) was first for %d replicas, want exactly 1", key, n)
			}
		}
	}
	checkOnce("before")

	const callbacks, perCallback = 1000, 2
	const total = callbacks * perCallback
	var enqueueRetries atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for p := range 8 {
		q := queues[p%2]
		wg.Go(func() {
			for cb := range next {
				jobs := make([]Job, perCallback)
				for j := range jobs {
					jobs[j] = mkJob(fmt.Sprintf("cb%d-%d", cb, j), "ok")
				}
				// Like Tencent, retry a callback answered with a failure;
				// its Msg-Id keeps a retried publish from storing it twice.
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					err := q.Enqueue(ctx, fmt.Sprintf("cb%d", cb), jobs)
					cancel()
					if err == nil {
						break
					}
					enqueueRetries.Add(1)
					if time.Since(start) > 30*time.Second {
						t.Errorf("cb%d: %v", cb, err)
						return
					}
				}
			}
		})
	}
	killed := make(chan string, 1)
	go func() {
		defer close(next)
		for cb := range callbacks {
			if cb == callbacks/3 {
				// Kill the stream leader mid-run, with jobs queued and running.
				info, err := queues[0].jobs.Info(context.Background())
				if err != nil || info.Cluster == nil {
					t.Errorf("stream info: %v", err)
					killed <- ""
				} else {
					name := ""
					for _, ns := range servers {
						if ns.Name() == info.Cluster.Leader {
							ns.Shutdown()
							name = ns.Name()
						}
					}
					if name == "" {
						t.Errorf("stream leader %q is none of the servers", info.Cluster.Leader)
					}
					killed <- name
				}
			}
			next <- cb
		}
	}()
	leader := <-killed
	t.Logf("killed stream leader %s after %v", leader, time.Since(start))
	wg.Wait()
	t.Logf("enqueued %d jobs in %v (%d enqueue retries)", total, time.Since(start), enqueueRetries.Load())

	eventually(t, 30*time.Second, "every job done", func() bool {
		d, _ := s.doneTotals()
		return d == total
	})
	distinct, runs := s.doneTotals()
	h.mu.Lock()
	redelivered := len(h.redelivered)
	h.mu.Unlock()
	t.Logf("%d jobs done in %v; %d runs, %d duplicates; %d jobs redelivered", distinct, time.Since(start), runs, runs-distinct, redelivered)
	for cb := range callbacks {
		for j := range perCallback {
			if id := fmt.Sprintf("cb%d-%d", cb, j); s.doneCount(id) == 0 {
				t.Errorf("%s lost", id)
			}
		}
	}
	checkOnce("after")
	eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, queues[1]) })
}
