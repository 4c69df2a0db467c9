package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// BenchmarkPrevDecision is the reply cost of a Prev callback (two
// targets) whose rule set denies on a condition: plain, or reading a
// counter kept in the embedded JetStream (each target one compare-and-set
// write), or one kept in memory (the counting without the store).
// Nothing is enqueued: deny runs in the reply.
func BenchmarkPrevDecision(b *testing.B) {
	plain := `rules:
  - name: deny-nobody
    on: Sns.CallbackPrevFriendAdd
    when: From_Account == "nobody"
    actions:
      - deny: { code: 38001, reason: no }
`
	counted := `counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
rules:
  - name: deny-floods
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 1000000000
    actions:
      - deny: { code: 38001, reason: no }
`
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(b.TempDir(), "data"),
		Registry: builtin.Registry(builtin.Deps{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	for _, c := range []struct {
		name  string
		rules string
		store func(e *Engine) rules.CounterStore
	}{
		{"no-counter", plain, nil},
		{"counter-jetstream", counted, func(e *Engine) rules.CounterStore { return e.Counters }},
		{"counter-memory", counted, func(*Engine) rules.CounterStore { return rules.NewMemCounters() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			e, _ := counterEngine(b, q, c.rules)
			e.Queue, e.Logger = memQueue{}, slog.New(slog.NewJSONHandler(io.Discard, nil))
			if c.store != nil {
				e.Counters = c.store(e)
			}
			cb := newCB(imevent.CmdPrevFriendAdd)
			if err := imcallback.Decode(callbacks.Must("prev_friend_add.json"), cb); err != nil {
				b.Fatal(err)
			}
			cb.ID = "bench"
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r, err := e.Handle(ctx, cb)
				if err != nil || r.ResultItem[0].ResultCode != 0 {
					b.Fatal(err, r)
				}
			}
		})
	}
}
