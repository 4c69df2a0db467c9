package rules

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/rules/imevent"
)

// maxTestEvents bounds the events of one test case, repeats included:
// tests run at every load.
const maxTestEvents = 10_000

// testEvents reads a test's events: the last is the case's event, the
// others run before it (tc.seq).
func (p *fileParser) testEvents(tc *testCase, fields map[string]kv, val *yaml.Node, r *rule, what string) bool {
	if _, both := fields["event"]; both {
		p.errAt(resolve(val), "%s: give event or events, not both", what)
		return false
	}
	list := resolve(val)
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		p.errAt(list, "%s: events: want a non-empty list of {event, repeat}, got %s", what, describeNode(list))
		return false
	}
	var all []imevent.Event
	good := true
	for i, it := range list.Content {
		w := fmt.Sprintf("%s: events: item %d", what, i+1)
		ef, ok := p.mapping(resolve(it), w, testEventKeys)
		if !ok {
			good = false
			continue
		}
		if _, ok := ef["event"]; !ok {
			p.errAt(resolve(it), "%s: missing required key event", w)
			good = false
			continue
		}
		ev, ok := p.testEvent(ef, r, w)
		n := 1
		if kv, has := ef["repeat"]; has {
			v := resolve(kv.val)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil || n < 1 {
				p.errAt(v, "%s: repeat: want a positive integer, got %s", w, describeNode(v))
				ok = false
			}
		}
		if !ok {
			good = false
			continue
		}
		if len(all)+n > maxTestEvents {
			p.errAt(resolve(it), "%s: a test case has at most %d events, repeats included", w, maxTestEvents)
			return false
		}
		for range n {
			all = append(all, ev)
		}
	}
	if !good {
		return false
	}
	tc.event, tc.seq = all[len(all)-1], all[:len(all)-1]
	return true
}

// testState is what the events before a case's last one left: the
// counters (with the last event counted too) and the once keys.
type testState struct {
	counts *Counts
	once   map[string]bool // rule + "\x00" + key
}

func (t *testState) onceSeen(rule, key string) bool { return t.once[rule+"\x00"+key] }

// testEpoch is when a test's events happen when they give no EventTime:
// all at one instant, inside every window.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// EventTime is when an event is counted in tests and backtest: its
// EventTime (ms) when it has one, else def.
func EventTime(ev *imevent.Event, def time.Time) time.Time {
	if ev.EventTime > 0 {
		return time.UnixMilli(int64(ev.EventTime))
	}
	return def
}

// testState runs the case's earlier events in a fresh state and counts
// its last one.
func (s *Set) testState(tc *testCase) *testState {
	st := &testState{}
	if len(s.counters) == 0 && len(tc.seq) == 0 {
		return st
	}
	mem := NewMemCounters()
	ctx := context.Background()
	for i := range tc.seq {
		ev := &tc.seq[i]
		counts := s.Count(ctx, ev, mem, EventTime(ev, testEpoch))
		ms, _ := s.matchWith(nil, ev, nil, tc.lists, false, counts)
		for _, m := range ms {
			if m.Once != nil && !m.Shadow {
				if st.once == nil {
					st.once = make(map[string]bool)
				}
				st.once[m.Rule+"\x00"+m.Once.Key] = true
			}
		}
	}
	st.counts = s.Count(ctx, &tc.event, mem, EventTime(&tc.event, testEpoch))
	return st
}

// countsText lists the counter values a failed case's last event used,
// one per line, for its failure message.
func countsText(c *Counts) string {
	var b strings.Builder
	for _, v := range c.Values() {
		fmt.Fprintf(&b, "\n  count(%q, %q) = %d", v.Counter, v.Key, v.Count)
		if v.Error != "" {
			b.WriteString(" (error: " + v.Error + ")")
		}
	}
	return b.String()
}
