package actions_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

var listSpec = actions.Spec{Name: "lists", Params: actions.ParamsOf[listParams]()}

type listParams struct {
	To   []string
	Tags []string
}

func (p *listParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.To, actions.Param{Name: "to", Required: true, MinItems: 1, MaxItems: 3})
	d.Param(&p.Tags, actions.Param{Name: "tags"})
}

func TestStringList(t *testing.T) {
	if got := actions.StringList.String(); got != "list of strings" {
		t.Errorf("String() = %q", got)
	}
	p, err := listSpec.Check(map[string]any{"to": []any{"a", 7}, "tags": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p["to"], []string{"a", "7"}) || !reflect.DeepEqual(p["tags"], []string{}) {
		t.Errorf("normalised %#v", p)
	}
	again, err := listSpec.Check(p)
	if err != nil || !reflect.DeepEqual(again, p) {
		t.Errorf("Check is not idempotent: %v %#v", err, again)
	}
	dec, err := actions.Decode[listParams](listSpec, map[string]any{"to": []string{"x", "y"}})
	if err != nil || !reflect.DeepEqual(dec, listParams{To: []string{"x", "y"}}) {
		t.Errorf("Decode = %+v, %v", dec, err)
	}
	// At load, templates stand in for items, and the length still counts.
	if _, err := listSpec.Check(map[string]any{"to": []any{actions.Deferred{}, "b"}}); err != nil {
		t.Errorf("deferred item: %v", err)
	}
	if _, err := actions.Decode[listParams](listSpec, map[string]any{"to": []any{actions.Deferred{}}}); err == nil || !strings.Contains(err.Error(), "to[0]: was not rendered") {
		t.Errorf("Decode of a deferred item: %v", err)
	}
	for want, in := range map[string]map[string]any{
		"to: 0 items, want at least 1":         {"to": []any{}},
		"to: 4 items, more than the 3 allowed": {"to": []any{"a", "b", "c", "d"}},
		"to: 4 items, more than the 3":         {"to": []any{"a", actions.Deferred{}, "c", "d"}},
		"to: want list of strings, got string": {"to": "a"},
		"to: item 2: want string, got list":    {"to": []any{"a", []any{"b"}}},
		"to: item 1: want string, got map":     {"to": []any{map[string]any{}, actions.Deferred{}}},
		"tags: want list of strings, got map":  {"to": []any{"a"}, "tags": map[string]any{}},
	} {
		if _, err := listSpec.Check(in); err == nil || err.Error() != want && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want %q", in, err, want)
		}
	}
}

func TestWithRemaining(t *testing.T) {
	rest := map[string]any{"to": []string{"b"}}
	base := errors.New("boom")
	if actions.WithRemaining(nil, rest) != nil {
		t.Fatal("nil error wrapped")
	}
	for _, tc := range []struct {
		err   error
		perm  bool
		after time.Duration
	}{
		{actions.Transient(base, 3*time.Second), false, 3 * time.Second},
		{actions.Permanent(base), true, 0},
		{fmt.Errorf("kind: %w", actions.Transient(base, 0)), false, 0},
		{base, false, 0},
	} {
		err := actions.WithRemaining(tc.err, rest)
		perm, after := actions.Classify(err)
		if perm != tc.perm || after != tc.after || !errors.Is(err, base) || err.Error() != tc.err.Error() {
			t.Errorf("WithRemaining(%v): %v %v %q", tc.err, perm, after, err)
		}
		if !reflect.DeepEqual(actions.Remaining(err), rest) {
			t.Errorf("Remaining = %v", actions.Remaining(err))
		}
		// Wrapped again by a caller, the remaining params still show.
		if !reflect.DeepEqual(actions.Remaining(fmt.Errorf("outer: %w", err)), rest) {
			t.Error("Remaining lost through a wrap")
		}
	}
	if actions.Remaining(actions.Transient(base, 0)) != nil || actions.Remaining(base) != nil {
		t.Error("Remaining of a failure that names none")
	}
}
