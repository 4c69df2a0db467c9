package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// memQueue stores nothing: it isolates the engine's own work on the
// callback path (match, once, jobs) from the store's.
type memQueue struct{}

func (memQueue) Enqueue(context.Context, string, []queue.Job) error { return nil }
func (memQueue) OnceBy(context.Context, string, time.Duration, string) (bool, queue.OnceSeen, error) {
	return true, queue.OnceSeen{}, nil
}
func (memQueue) Forget(context.Context, string, time.Duration) error { return nil }
func (memQueue) MarkCancel(context.Context, string, []queue.Pair, time.Time, string) error {
	return nil
}

// benchEngine is an engine over two rules that queue one job each for
// every pair of a friend_add callback, logging at info (debug off).
func benchEngine(b *testing.B) (*Engine, []byte) {
	dir := b.TempDir()
	yaml := "rules:\n" +
		"  - name: audit\n    on: Sns.CallbackFriendAdd\n    actions:\n      - log: { message: \"added ${ To_Account }\" }\n" +
		"  - name: vip\n    when: From_Account == \"nobody\"\n    actions:\n      - log: { message: vip }\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	var reg actions.Registry
	_ = reg.Register(&actions.Log{})
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return &Engine{Rules: func() *rules.Set { return set }, Queue: memQueue{}, Logger: log}, callbacks.Must("friend_add.json")
}

// BenchmarkHandleCallback is the engine's part of the callback path
// (receiver -> decode -> match -> store), tracing off: its allocations
// must not rise with features that are off.
func BenchmarkHandleCallback(b *testing.B) {
	e, data := benchEngine(b)
	benchHandle(b, e, data)
}

// benchHandle measures e.Handle of the callback body data.
func benchHandle(b *testing.B, e *Engine, data []byte) {
	cb := newCB(imevent.CmdFriendAdd)
	if err := imcallback.Decode(data, cb); err != nil {
		b.Fatal(err)
	}
	cb.ID = "bench"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Handle(ctx, cb); err != nil {
			b.Fatal(err)
		}
	}
}
