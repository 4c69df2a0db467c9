package record

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"weak"

	"github.com/friendflow/friendflow/rules"
)

// The log keeps the hash of the rule set that decided each event, not the
// set: after many reloads, each deciding some events, only the last
// keptSets sets stay reachable from it; the events of older ones are still
// listed, without derived outcomes.
func TestLogDoesNotPinOldRuleSets(t *testing.T) {
	l, _ := newLog(t, 100)
	const reloads = 6
	refs := make([]weak.Pointer[rules.Set], reloads)
	for i := range reloads {
		set := loadSet(t, strings.Replace(testRules, "never", "never "+strconv.Itoa(i), 1))
		refs[i] = weak.Make(set)
		l.Record(set, friendAdd("c"+strconv.Itoa(i), "friend_response", "a", "b"), nil, nil, nil, nil, nil, nil)
	}
	flush(t, l)
	for range 3 {
		runtime.GC()
	}
	for i, ref := range refs {
		if kept := ref.Value() != nil; kept != (i >= reloads-keptSets) {
			t.Errorf("set %d of %d reachable: %v", i+1, reloads, kept)
		}
	}
	var derived []bool
	if err := l.Export(context.Background(), Filter{}, func(e *Event) error {
		derived = append(derived, e.Outcomes != nil)
		return nil
	}); err != nil || len(derived) != reloads {
		t.Fatalf("export: %v, %d events", err, len(derived))
	}
	for i, d := range derived {
		if d != (i >= reloads-keptSets) {
			t.Errorf("event %d: outcomes derived %v", i+1, d)
		}
	}
	runtime.KeepAlive(l)
}
