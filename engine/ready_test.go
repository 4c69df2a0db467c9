package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A callback that arrives before the first rules load waits for it and
// is answered with those rules, not refused with ErrNoRules.
func TestCallbackBeforeFirstLoadWaitsForRules(t *testing.T) {
	loaded, asked := make(chan struct{}), make(chan struct{})
	var (
		current atomic.Pointer[rules.Set]
		once    sync.Once
	)
	h := newHarness(t, welcomeRules, false, func(e *Engine) {
		e.RulesLoaded = loaded
		e.Rules = func() *rules.Set {
			once.Do(func() { close(asked) })
			return current.Load()
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json"))
		done <- err
	}()
	<-asked // the callback found no rules; now they load
	current.Store(h.set)
	close(loaded)
	if err := <-done; err != nil {
		t.Fatalf("callback during the first load: %v", err)
	}
	if st, err := h.q.Stats(context.Background()); err != nil || st.Jobs == 0 {
		t.Fatalf("no jobs stored: %+v %v", st, err)
	}

	// Without a load, the wait ends with the callback's context.
	h2 := newHarness(t, welcomeRules, false, func(e *Engine) {
		e.Rules, e.RulesLoaded = func() *rules.Set { return nil }, make(chan struct{})
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h2.eng.Handle(ctx, h2.callback(t, imevent.CmdFriendAdd, "friend_add.json")); !errors.Is(err, ErrNoRules) {
		t.Fatalf("no rules ever: %v", err)
	}
}

// Readiness follows what callbacks meet: false after a failed store,
// true again once a callback is stored.
func TestReadyFollowsStoreOutcomes(t *testing.T) {
	h := newHarness(t, welcomeRules, false)
	if err := h.eng.Ready(); err != nil {
		t.Fatalf("fresh engine: %v", err)
	}
	h.eng.stored(context.Background(), fmt.Errorf("enqueue: %w", queue.ErrCallbackTooLarge))
	if err := h.eng.Ready(); err != nil {
		t.Fatalf("a callback over the message limit made the engine not ready: %v", err)
	}
	h.eng.stored(context.Background(), errors.New("insufficient resources"))
	if err := h.eng.Ready(); err == nil {
		t.Fatal("ready after a failed store")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.eng.stored(ctx, nil)
	if _, err := h.eng.Handle(context.Background(), h.callback(t, imevent.CmdFriendAdd, "friend_add_response.json")); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Ready(); err != nil {
		t.Fatalf("after a stored callback: %v", err)
	}
}
