package state

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxPage is the most members one Page returns.
const MaxPage = 1000

// Page returns up to limit members of the list from cursor on (0: the
// first), shard by shard and sorted within a shard, and the cursor of the
// next page (0: there is none). It reads the shards this replica knows to
// hold members, one at a time: a page of a list of any size holds a page
// and one shard (a few kilobytes at a million members) in memory.
func (l *Lists) Page(ctx context.Context, name string, cursor uint64, limit int) (members []string, next uint64, err error) {
	if err := CheckName(name); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	shard, offset := uint32(cursor>>32), int(cursor&0xffffffff)
	gen, shards := l.shards(name, shard)
	for _, s := range shards {
		e, err := l.kv.Get(ctx, shardKey(name, gen, s))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			offset = 0
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("lists: read %s: %w", name, err)
		}
		ms := splitMembers(e.Value())
		if s != shard {
			offset = 0
		}
		for i := offset; i < len(ms); i++ {
			if len(members) == limit {
				return members, uint64(s)<<32 | uint64(i), nil
			}
			members = append(members, ms[i])
		}
	}
	return members, 0, nil
}

// shards are the shards of name's current generation this replica holds
// members of, from shard from on, in order.
func (l *Lists) shards(name string, from uint32) (uint64, []uint32) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	m := l.lists[name]
	if m == nil {
		return 0, nil
	}
	g := m.gens[m.gen]
	if g == nil {
		return m.gen, nil
	}
	var out []uint32
	for s := range g.shards {
		if s >= from {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return m.gen, out
}
