package state

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// fill puts n members into list straight into l's memory, as its watch
// would after reading them.
func fill(l *Lists, list string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := &memList{gens: map[uint64]*genSets{}}
	g := m.generation(0)
	for i := range n {
		mb := "user_" + itoa(i)
		s := g.shards[shardOf(mb)]
		if s == nil {
			s = newHashSet()
			g.shards[shardOf(mb)] = s
		}
		if s.add(hashOf(mb)) {
			g.n++
		}
	}
	l.lists[list] = m
}

// BenchmarkRuleListCheck is the cost per event of matching a Prev event
// against a rule whose when is `From_Account in list("spammers")`, with a
// million members in the list: the rules' fast path and this replica's
// hash sets, half the events listed.
func BenchmarkRuleListCheck(b *testing.B) {
	l := replica(b, startServer(b))
	fill(l, "spammers", 1_000_000)
	dir := b.TempDir()
	rulesYAML := `lists: [{name: spammers}]
rules:
  - name: deny-listed
    on: Sns.CallbackPrevFriendAdd
    when: From_Account in list("spammers")
    actions:
      - deny: { code: 38001 }
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rulesYAML), 0o644); err != nil {
		b.Fatal(err)
	}
	var reg actions.Registry
	if err := reg.Register(&actions.Deny{}); err != nil {
		b.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: &reg, Lists: l})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]imevent.Event, 1024)
	for i := range evs {
		evs[i] = imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "user_" + itoa(i*1999), To_Account: "bob"}
	}
	if d := set.Decide(&evs[1]); !d.Deny {
		b.Fatal("a listed account is not denied")
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		set.Match(&evs[i&1023])
	}
}

// BenchmarkTopKeys: the busiest 20 of a counter of 50 000 keys, examining
// the 10 000 counted last (the default scan): the cost of one Counters
// page or `counters top` per counter.
func BenchmarkTopKeys(b *testing.B) {
	q := openQueue(b, filepath.Join(b.TempDir(), "data"))
	b.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	c := NewCounters(q)
	ctr := rules.Counter{Name: "by_sender", Window: time.Hour}
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < 50000; i += 16 {
				if _, err := c.Add(ctx, ctr, "user_"+strconv.Itoa(i), now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for b.Loop() {
		top, err := c.TopKeys(ctx, ctr, 20, 0, now)
		if err != nil || !top.Cut || top.Examined != DefaultTopScan || len(top.Keys) != 20 {
			b.Fatalf("%+v %v", top.Examined, err)
		}
	}
}
