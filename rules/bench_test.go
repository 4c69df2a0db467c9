package rules

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// genRules writes n rules; indexed rules each test a distinct
// From_Account == "userN" conjunct, unindexed ones hide the same test
// behind an ||, so every rule is evaluated for every event.
func genRules(n int, indexed bool) string { return genRulesFrom(0, n, indexed) }

// genRuleFiles is genRules split into files of at most 1000 rules (about
// 200 KiB, 21 000 YAML nodes), as a large rule set must be under the
// per-file limits (DefaultMaxFileBytes, DefaultMaxNodes).
func genRuleFiles(n int, indexed bool) map[string]string {
	files := make(map[string]string)
	for from := 0; from < n; from += 1000 {
		files[fmt.Sprintf("r%05d.yaml", from)] = genRulesFrom(from, min(n, from+1000), indexed)
	}
	return files
}

func genRulesFrom(from, to int, indexed bool) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "  - name: rule-%d\n", i)
		if indexed {
			fmt.Fprintf(&b, "    when: 'From_Account == \"user%d\" && ClientCmd in [\"friend_add\", \"friend_response\"]'\n", i)
		} else {
			fmt.Fprintf(&b, "    when: 'ForceFlag == 1 || From_Account == \"user%d\" && ClientCmd in [\"friend_add\", \"friend_response\"]'\n", i)
		}
		b.WriteString("    once: {key: 'From_Account + \"|\" + To_Account'}\n")
		b.WriteString("    actions:\n      - log: {message: \"hello ${ From_Account } from ${ To_Account }\", level: info}\n")
	}
	return b.String()
}

func BenchmarkMatch(b *testing.B) {
	for _, indexed := range []bool{true, false} {
		for _, n := range []int{1, 100, 1000, 10000} {
			name := fmt.Sprintf("indexed/rules=%d", n)
			if !indexed {
				name = fmt.Sprintf("unindexed/rules=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				s := mustLoad(b, genRuleFiles(n, indexed))
				ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "user0", To_Account: "bob"}
				if got := mustMatch(b, s, ev); len(got) != 1 {
					b.Fatalf("matches = %d", len(got))
				}
				b.ReportAllocs()
				for b.Loop() {
					s.Match(ev)
				}
			})
		}
	}
}

// BenchmarkMatchNoMatch is the common case of an event no rule wants.
func BenchmarkMatchNoMatch(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("indexed/rules=%d", n), func(b *testing.B) {
			s := mustLoad(b, genRuleFiles(n, true))
			ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "nobody", To_Account: "bob"}
			b.ReportAllocs()
			for b.Loop() {
				s.Match(ev)
			}
		})
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	s := mustLoad(b, map[string]string{"r.yaml": genRules(100, false)})
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "user0", To_Account: "bob"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Match(ev)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			dir := writeFiles(b, genRuleFiles(n, true))
			reg := testRegistry(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(dir, Options{Registry: reg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchRules writes bench/genrules.sh's rule set into a new temporary
// directory, the rule set the load benchmark matches against.
func benchRules(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	out, err := exec.Command("bash", filepath.Join("..", "bench", "genrules.sh"), dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("genrules.sh: %v\n%s", err, out)
	}
	return dir
}

// sampleEvents returns the events of examples/callbacks/friend_add.json as
// the receiver builds them: one per pair, sharing the callback's fields.
func sampleEvents(tb testing.TB) []*imevent.Event {
	tb.Helper()
	data := callbacks.Must("friend_add.json")
	var cb struct {
		imevent.Event
		PairList []imevent.Event
	}
	if err := json.Unmarshal(data, &cb); err != nil {
		tb.Fatal(err)
	}
	out := make([]*imevent.Event, len(cb.PairList))
	for i, p := range cb.PairList {
		ev := cb.Event
		ev.From_Account, ev.To_Account, ev.Initiator_Account = p.From_Account, p.To_Account, p.Initiator_Account
		ev.EventTime = 1_764_000_000_000
		ev.PairIndex, ev.PairCount = i, len(cb.PairList)
		out[i] = &ev
	}
	return out
}

// BenchmarkMatchBenchRules matches the three events of one sample callback
// against the load benchmark's 100 rules: the matching share of a callback.
func BenchmarkMatchBenchRules(b *testing.B) {
	s, err := Load(benchRules(b), Options{Registry: testRegistry(b)})
	if err != nil {
		b.Fatal(err)
	}
	evs := sampleEvents(b)
	for i, ev := range evs {
		if got := mustMatch(b, s, ev); len(got) != 1 {
			b.Fatalf("event %d: %d matches, want 1", i, len(got))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, ev := range evs {
			s.Match(ev)
		}
	}
}
