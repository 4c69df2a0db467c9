package record

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"weak"

	"github.com/friendflow/friendflow/rules"
)

// Events hold the hash of the rule set that decided them, not the set:
// after many reloads, each deciding some recorded events, only the last
// keptSets sets stay reachable from the ring; the events of older ones
// are still listed, without derived outcomes.
func TestRingDoesNotPinOldRuleSets(t *testing.T) {
	r := New(100)
	const reloads = 6
	refs := make([]weak.Pointer[rules.Set], reloads)
	for i := range reloads {
		set := loadSet(t, strings.Replace(testRules, "never", "never "+strconv.Itoa(i), 1))
		refs[i] = weak.Make(set)
		r.Record(set, friendAdd("c"+strconv.Itoa(i), "friend_response", "a", "b"), nil, nil, nil, nil, nil, nil)
	}
	for range 3 {
		runtime.GC()
	}
	for i, ref := range refs {
		if kept := ref.Value() != nil; kept != (i >= reloads-keptSets) {
			t.Errorf("set %d of %d reachable: %v", i+1, reloads, kept)
		}
	}
	events := r.Export()
	if len(events) != reloads {
		t.Fatalf("%d events", len(events))
	}
	for i, e := range events {
		if derived := e.Outcomes != nil; derived != (i >= reloads-keptSets) {
			t.Errorf("event %d: outcomes derived %v", i+1, derived)
		}
	}
	if _, set, ok := r.Get(1); !ok || set != nil {
		t.Errorf("Get(1): %v, set %v; want the event without its set", ok, set)
	}
	runtime.KeepAlive(r)
}
