package main

import (
	"context"
	"fmt"

	"github.com/friendflow/friendflow/engine/state"
)

// openLists opens the operator-managed lists beside the queue, in its
// JetStream and namespace, and hands them to the rules: a reload's Set
// reads them in `in list(...)`. Members load in the background; until
// they have, /readyz says so and rules that look a list up fail (and are
// counted) for the events they see.
func (s *server) openLists(ctx context.Context) error {
	var lists *state.Lists
	changed := s.metrics.WatchLists(func() []state.Summary {
		if lists == nil {
			return nil
		}
		return lists.Summary()
	})
	lists, err := state.OpenLists(ctx, state.ListsConfig{
		JetStream: s.queue.JetStream(),
		Namespace: s.queue.Namespace(),
		Replicas:  s.queue.Replicas(),
		Logger:    s.log,
		Changed:   changed,
	})
	if err != nil {
		return fmt.Errorf("lists: %w", err)
	}
	s.lists = lists
	s.reloader.Options.Lists = lists
	return nil
}
