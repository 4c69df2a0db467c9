package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue"
)

// greet is an action kind: the queue runs each job whose Action is "greet"
// through Do, with the job's params checked against the Spec.
type greet struct{ done chan string }

func (g *greet) Spec() actions.Spec {
	return actions.Spec{Name: "greet", Doc: "Says hello.", Params: []actions.Param{
		{Name: "to", Type: actions.String, Required: true, Doc: "whom to greet"},
	}}
}

func (g *greet) Do(_ context.Context, job actions.Job, params map[string]any) error {
	g.done <- fmt.Sprintf("%s: hello %s (attempt %d)", job.Rule, params["to"], job.Attempt)
	return nil
}

// The queue stores a callback's jobs (Enqueue returns once they are
// stored, before the callback is answered) and a pool of workers runs them
// through the action kinds of the Registry, retrying transient failures.
// Without a URL it starts an embedded NATS JetStream server over DataDir.
func Example() {
	dir, err := os.MkdirTemp("", "queue-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	g := &greet{done: make(chan string, 1)}
	var reg actions.Registry
	if err := reg.Register(g); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Config{DataDir: dir, Registry: &reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Stop(5 * time.Second)
	go q.Run(ctx)

	err = q.Enqueue(ctx, "cb-1", []queue.Job{{Job: actions.Job{
		ID: "cb-1.0", Rule: "welcome", Action: "greet",
		Params: map[string]any{"to": "bob"}, Event: []byte(`{"To_Account":"bob"}`),
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-g.done)
	// Output: welcome: hello bob (attempt 1)
}
