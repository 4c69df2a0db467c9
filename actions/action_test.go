package actions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

var testSpec = actions.Spec{Name: "test", Params: actions.ParamsOf[testParams]()}

func TestCheckNormalises(t *testing.T) {
	in := map[string]any{
		"s": 42, "n": 7.0, "b": true, "d": "1m30s",
		"h":   map[string]any{"A": "a", "N": 1, "T": true, "F": 1.5},
		"m":   map[string]string{"k": "v"},
		"any": []any{1, "x"},
		"req": "r",
		"obj": map[string]any{"x": json.Number("3")},
	}
	before := maps.Clone(in)
	out, err := testSpec.Check(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"s": "42", "level": "info", "n": int64(7), "b": true, "d": 90 * time.Second,
		"h":   map[string]string{"A": "a", "N": "1", "T": "true", "F": "1.5"},
		"m":   map[string]any{"k": "v"},
		"any": []any{1, "x"},
		"req": "r",
		"obj": map[string]any{"x": int64(3), "y": "why"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("Check\n got %#v\nwant %#v", out, want)
	}
	if !reflect.DeepEqual(in, before) {
		t.Error("input modified")
	}
}

func TestCheckNormalisesDefaults(t *testing.T) {
	out, err := testSpec.Check(map[string]any{"req": "r"})
	if err != nil {
		t.Fatal(err)
	}
	// Declared as 10 (int) and "5s" (string); Do must see the declared types.
	if out["n"] != int64(10) || out["d"] != 5*time.Second || out["level"] != "info" {
		t.Errorf("defaults %#v", out)
	}
	if _, present := out["b"]; present {
		t.Error("a parameter without default was filled in")
	}
	bad := actions.Spec{Name: "bad", Params: []actions.Param{{Name: "d", Type: actions.Duration, Default: "soon"}}}
	if _, err := bad.Check(nil); err == nil || !strings.Contains(err.Error(), "invalid default") {
		t.Errorf("bad default: %v", err)
	}
}

func TestCheckInts(t *testing.T) {
	spec := actions.Spec{Name: "i", Params: []actions.Param{{Name: "n", Type: actions.Int}}}
	for _, v := range []any{int(5), int64(5), uint64(5), 5.0, json.Number("5")} {
		out, err := spec.Check(map[string]any{"n": v})
		if err != nil || out["n"] != int64(5) {
			t.Errorf("%T %v: %v, %v", v, v, out["n"], err)
		}
	}
	for _, v := range []any{5.5, uint64(math.MaxUint64), 1e19, -1e19, math.Inf(1), math.NaN(), json.Number("5.5"), "5", true} {
		if out, err := spec.Check(map[string]any{"n": v}); err == nil {
			t.Errorf("%T %v accepted as %v", v, v, out["n"])
		}
	}
	out, err := spec.Check(map[string]any{"n": -9.223372036854775808e18})
	if err != nil || out["n"] != int64(math.MinInt64) {
		t.Errorf("MinInt64: %v, %v", out["n"], err)
	}
}

func TestCheckErrors(t *testing.T) {
	for want, in := range map[string]map[string]any{
		"req: required parameter is missing":       {},
		"req: required parameter is missing ":      {"req": nil},
		"bogus: unknown parameter (known: [s":      {"req": "r", "bogus": 1},
		`level: "debug" is not one of [info warn]`: {"req": "r", "level": "debug"},
		"n: want integer, got string":              {"req": "r", "n": "1"},
		"b: want bool, got number":                 {"req": "r", "b": 1},
		`d: invalid duration "-1s"`:                {"req": "r", "d": "-1s"},
		"d: negative duration":                     {"req": "r", "d": -time.Second},
		"d: want duration, got number":             {"req": "r", "d": 5},
		"h: want map of strings, got list":         {"req": "r", "h": []any{}},
		"h.k: want string, got list":               {"req": "r", "h": map[string]any{"k": []any{}}},
		"m: want map, got string":                  {"req": "r", "m": "x"},
		"s: want string, got map":                  {"req": "r", "s": map[string]any{}},
		"obj: want object, got list":               {"req": "r", "obj": []any{}},
		"obj.x: required parameter is missing":     {"req": "r", "obj": map[string]any{}},
		"obj.z: unknown parameter":                 {"req": "r", "obj": map[string]any{"x": 1, "z": 2}},
		"obj.x: want integer, got bool":            {"req": "r", "obj": map[string]any{"x": true}},
	} {
		_, err := testSpec.Check(in)
		if err == nil || !strings.HasPrefix(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("Check(%v) = %v, want %q", in, err, want)
			continue
		}
		var pe *actions.ParamError
		if !errors.As(err, &pe) && !strings.Contains(want, "default") {
			t.Errorf("%v is not a *ParamError", err)
		}
	}
	none := actions.Spec{Name: "none"}
	if _, err := none.Check(map[string]any{"x": 1}); err == nil || !strings.Contains(err.Error(), "takes none") {
		t.Errorf("no params: %v", err)
	}
	if got := (&actions.ParamError{Msg: "m"}).Error(); got != "m" {
		t.Errorf("pathless ParamError %q", got)
	}
}

func TestCheckDeferred(t *testing.T) {
	var seen map[string]any
	spec := testSpec
	spec.Validate = func(p map[string]any) error { seen = p; return nil }
	d := actions.Deferred{}
	out, err := spec.Check(map[string]any{
		"req": d, "level": d, "n": d, "b": d, "d": d, "h": map[string]any{"k": d}, "obj": map[string]any{"x": d},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["req"] != d || out["level"] != d || out["n"] != d || out["b"] != d || out["d"] != d {
		t.Errorf("Deferred not kept: %#v", out)
	}
	if h := out["h"].(map[string]string); h["k"] != "" {
		t.Errorf("Deferred map value %q", h["k"])
	}
	if !reflect.DeepEqual(seen, out) {
		t.Error("Validate did not see the checked params")
	}
}

func TestCheckValidate(t *testing.T) {
	spec := actions.Spec{
		Name:   "v",
		Params: []actions.Param{{Name: "a", Type: actions.Int, Default: 1}},
		Validate: func(p map[string]any) error {
			if p["a"].(int64) > 3 {
				return &actions.ParamError{Path: "a", Msg: "too big"}
			}
			return nil
		},
	}
	if _, err := spec.Check(nil); err != nil {
		t.Error(err)
	}
	if _, err := spec.Check(map[string]any{"a": 4}); err == nil || err.Error() != "a: too big" {
		t.Errorf("Validate not applied: %v", err)
	}
}

func TestParamTypeString(t *testing.T) {
	for typ, want := range map[actions.ParamType]string{
		actions.String: "string", actions.Int: "integer", actions.Bool: "bool", actions.Duration: "duration",
		actions.StringMap: "map of strings", actions.Map: "map", actions.Object: "object", actions.Any: "any",
		actions.ParamType(99): "ParamType(99)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %q, want %q", int(typ), got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	base := errors.New("boom")
	if actions.Permanent(nil) != nil || actions.Transient(nil, time.Second) != nil {
		t.Fatal("nil error wrapped")
	}
	tests := []struct {
		err   error
		perm  bool
		after time.Duration
	}{
		{base, false, 0},
		{actions.Permanent(base), true, 0},
		{actions.Transient(base, 0), false, 0},
		{actions.Transient(base, 3*time.Second), false, 3 * time.Second},
		{fmt.Errorf("ctx: %w", actions.Permanent(base)), true, 0},
		{fmt.Errorf("ctx: %w", actions.Transient(base, time.Minute)), false, time.Minute},
		{nil, false, 0},
	}
	for _, tt := range tests {
		perm, after := actions.Classify(tt.err)
		if perm != tt.perm || after != tt.after {
			t.Errorf("Classify(%v) = %v, %v; want %v, %v", tt.err, perm, after, tt.perm, tt.after)
		}
	}
	wrapped := actions.Permanent(base)
	if !errors.Is(wrapped, base) || wrapped.Error() != "boom" {
		t.Errorf("Failure hides its cause: %v", wrapped)
	}
}

type stubKind struct{ name string }

func (k stubKind) Spec() actions.Spec                                    { return actions.Spec{Name: k.name} }
func (k stubKind) Do(context.Context, actions.Job, map[string]any) error { return nil }

func TestRegistry(t *testing.T) {
	var r actions.Registry // zero value
	if _, ok := r.Lookup("log"); ok || len(r.Names()) != 0 {
		t.Fatal("empty registry is not empty")
	}
	for _, k := range []actions.Kind{&actions.Webhook{}, &actions.Log{}, actions.Deny{}, stubKind{"a.b"}} {
		if err := r.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Register(&actions.Log{}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
	if err := r.Register(stubKind{}); err == nil {
		t.Error("empty name accepted")
	}
	if got, want := r.Names(), []string{"a.b", "deny", "log", "webhook"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names %v, want %v", got, want)
	}
	if k, ok := r.Lookup("webhook"); !ok || k.Spec().Name != "webhook" {
		t.Error("Lookup webhook")
	}
	if ks := r.Kinds(); len(ks) != 4 || ks[0].Spec().Name != "a.b" {
		t.Errorf("Kinds %v", ks)
	}

	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_ = r.Register(stubKind{fmt.Sprintf("k%d", i)})
			r.Lookup("log")
			r.Names()
		})
	}
	wg.Wait()
	if n := len(r.Names()); n != 12 {
		t.Errorf("%d kinds after concurrent registration", n)
	}
}
