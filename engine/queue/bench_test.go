package queue

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/bench/benchcpu"
)

// nop is an action that only counts its runs.
type nop struct{ runs atomic.Int64 }

func (n *nop) Spec() actions.Spec {
	return actions.Spec{Name: "im.send", Params: []actions.Param{
		{Name: "to", Type: actions.String}, {Name: "from", Type: actions.String}, {Name: "text", Type: actions.String},
	}}
}

func (n *nop) Do(context.Context, actions.Job, map[string]any) error {
	n.runs.Add(1)
	return nil
}

// benchJobs returns the three jobs of one callback, each about 300 bytes
// in JSON (format 1); the three take about 580 bytes in format 2, which
// stores their shared event once.
func benchJobs(callbackID string) []Job {
	event := json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"user-1234567","To_Account":"user-7654321","ClientCmd":"friend_response","EventTime":1700000000000}`)
	jobs := make([]Job, 3)
	for i := range jobs {
		jobs[i] = Job{Job: actions.Job{
			ID:     callbackID + "-" + strconv.Itoa(i),
			Rule:   "welcome-on-accept",
			Action: "im.send",
			Params: map[string]any{"to": "user-1234567", "from": "user-7654321", "text": "Hi user-1234567, thanks for adding me!"},
			Event:  event,
		}}
	}
	return jobs
}

// benchEnqueue enqueues b.N callbacks of three jobs from 16·GOMAXPROCS
// concurrent producers and reports the process CPU time per job (server
// and client together).
func benchEnqueue(b *testing.B, run bool) {
	reg := &actions.Registry{}
	n := &nop{}
	if err := reg.Register(n); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	q, err := Open(ctx, Config{DataDir: b.TempDir(), Registry: reg, Logger: testLogger(b)})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer q.Stop(10 * time.Second)
	if run {
		go q.Run(context.Background())
	}
	data, err := appendCallback(nil, "cb-000000", benchJobs("cb-000000"))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("stored callback size: %d bytes", len(data))

	var seq atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	cpu0 := benchcpu.Time(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		for pb.Next() {
			id := "cb-" + strconv.FormatInt(seq.Add(1), 10)
			if err := q.Enqueue(ctx, id, benchJobs(id)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if run {
		for n.runs.Load() < int64(3*b.N) {
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	cpu := benchcpu.Time(b) - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(3*b.N), "cpu-µs/job")
}

// BenchmarkEnqueue is the durable enqueue alone: encode, publish, wait for
// the server's ack (the path a callback waits for before its reply).
func BenchmarkEnqueue(b *testing.B) { benchEnqueue(b, false) }

// BenchmarkEnqueueAndRun adds the workers: every job is also delivered,
// run (a no-op action) and acknowledged before the clock stops.
func BenchmarkEnqueueAndRun(b *testing.B) { benchEnqueue(b, true) }
