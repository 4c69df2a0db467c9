package im

import (
	"strings"
	"testing"
)

// The rendered check runs before a callback is answered: a message IM
// would refuse fails the callback instead of being dead-lettered later.
func TestSendRenderedLimit(t *testing.T) {
	check := NewSend(nil).Spec().Rendered
	if check == nil {
		t.Fatal("im.send declares no rendered check")
	}
	for i, tc := range []struct {
		params map[string]any
		ok     bool
	}{
		{map[string]any{"to": "bob", "text": strings.Repeat("x", MaxContent)}, true},
		{map[string]any{"to": "bob", "text": strings.Repeat("x", MaxContent+1)}, false},
		{map[string]any{"to": "bob", "custom": map[string]any{"data": strings.Repeat("x", 5000), "desc": strings.Repeat("y", 3000)}}, true},
		{map[string]any{"to": "bob", "custom": map[string]any{"data": strings.Repeat("x", 5000), "ext": strings.Repeat("y", 3001)}}, false},
		{map[string]any{"to": "bob", "text": "hi", "push": map[string]any{"title": "t", "text": strings.Repeat("x", MaxPush-1)}}, true},
		{map[string]any{"to": "bob", "text": "hi", "push": map[string]any{"title": "t", "text": strings.Repeat("x", MaxPush-1), "ext": "{}"}}, false},
	} {
		if err := check(tc.params); (err == nil) != tc.ok {
			t.Errorf("case %d: %v, want ok %v", i, err, tc.ok)
		}
	}
}
