package state

import (
	"os"
	"path/filepath"
	"testing"

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
