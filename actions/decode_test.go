package actions_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// testParams fits testSpec: every type, pointers for presence, a nested
// struct for the Object.
type testParams struct {
	S     *string           `param:"s"`
	Level string            `param:"level"`
	N     int64             `param:"n"`
	B     *bool             `param:"b"`
	D     time.Duration     `param:"d"`
	H     map[string]string `param:"h"`
	M     map[string]any    `param:"m"`
	Any   any               `param:"any"`
	Req   string            `param:"req"`
	Obj   *testObj          `param:"obj"`
}

type testObj struct {
	X int64  `param:"x"`
	Y string `param:"y"`
}

func TestDecode(t *testing.T) {
	p, err := actions.Decode[testParams](testSpec, map[string]any{
		"s": 42, "b": false, "d": "1m", "h": map[string]any{"A": 1}, "m": map[string]any{"k": "v"},
		"any": []any{1, "x"}, "req": "r", "obj": map[string]any{"x": 3.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := testParams{
		Level: "info", N: 10, D: time.Minute, H: map[string]string{"A": "1"}, M: map[string]any{"k": "v"},
		Any: []any{1, "x"}, Req: "r", Obj: &testObj{X: 3, Y: "why"},
	}
	if p.S == nil || *p.S != "42" || p.B == nil || *p.B {
		t.Errorf("pointers S=%v B=%v", p.S, p.B)
	}
	p.S, p.B = nil, nil
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Decode\n got %#v\nwant %#v", p, want)
	}

	// Absent parameters without a default stay nil or zero.
	p, err = actions.Decode[testParams](testSpec, map[string]any{"req": "r"})
	if err != nil || p.S != nil || p.B != nil || p.Obj != nil || p.H != nil || p.Any != nil {
		t.Errorf("absent: %#v, %v", p, err)
	}

}

// An Object may stay a map, or be a struct rather than a pointer.
func TestDecodeObjectTypes(t *testing.T) {
	type flat struct {
		X int64 `param:"x"`
	}
	spec := actions.Spec{Name: "o", Params: []actions.Param{{Name: "o", Type: actions.Object, Fields: []actions.Param{{Name: "x", Type: actions.Int}}}}}
	m, err := actions.Decode[struct {
		O map[string]any `param:"o"`
	}](spec, map[string]any{"o": map[string]any{"x": 1}})
	if err != nil || m.O["x"] != int64(1) {
		t.Errorf("object as map: %#v, %v", m, err)
	}
	s, err := actions.Decode[struct {
		O flat `param:"o"`
	}](spec, map[string]any{"o": map[string]any{"x": 2}})
	if err != nil || s.O.X != 2 {
		t.Errorf("object as struct: %#v, %v", s, err)
	}
}

func TestDecodeRefusesBadParams(t *testing.T) {
	for want, in := range map[string]map[string]any{
		"req: required parameter is missing": {},
		"n: want integer, got string":        {"req": "r", "n": "ten"},
		"bogus: unknown parameter":           {"req": "r", "bogus": 1},
		"req: was not rendered":              {"req": actions.Deferred{}},
		"any[1].k: was not rendered":         {"req": "r", "any": []any{0, map[string]any{"k": actions.Deferred{}}}},
		"h.A: was not rendered":              {"req": "r", "h": map[string]any{"A": actions.Deferred{}}},
		"obj.x: was not rendered":            {"req": "r", "obj": map[string]any{"x": actions.Deferred{}}},
		"level: \"loud\" is not one of":      {"req": "r", "level": "loud"},
	} {
		_, err := actions.Decode[testParams](testSpec, in)
		var pe *actions.ParamError
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.As(err, &pe) {
			t.Errorf("Decode(%v) = %v, want a *ParamError %q", in, err, want)
		}
	}
	// Validate runs too: Do sees only what the loader would accept.
	spec := testSpec
	spec.Validate = func(map[string]any) error { return errors.New("invalid relation") }
	if _, err := actions.Decode[testParams](spec, map[string]any{"req": "r"}); err == nil || err.Error() != "invalid relation" {
		t.Errorf("Validate skipped: %v", err)
	}
}

func TestDecodeRefusesStructsThatDoNotFit(t *testing.T) {
	spec := actions.Spec{Name: "f", Params: []actions.Param{
		{Name: "a", Type: actions.String},
		{Name: "o", Type: actions.Object, Fields: []actions.Param{{Name: "x", Type: actions.Int}}},
	}}
	type inner struct {
		X int `param:"x"`
	}
	check := func(name, want string, decode func() error) {
		t.Helper()
		if err := decode(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, want)
		}
	}
	check("missing field", `no field for parameter "o"`, func() error {
		_, err := actions.Decode[struct {
			A string `param:"a"`
		}](spec, nil)
		return err
	})
	check("unknown field", `no parameter "b" is declared`, func() error {
		_, err := actions.Decode[struct {
			A string         `param:"a"`
			O map[string]any `param:"o"`
			B string         `param:"b"`
		}](spec, nil)
		return err
	})
	check("untagged field", "has no param tag", func() error {
		_, err := actions.Decode[struct {
			A string `param:"a"`
			O map[string]any
		}](spec, nil)
		return err
	})
	check("wrong type", "type int cannot hold parameter a, a string", func() error {
		_, err := actions.Decode[struct {
			A int            `param:"a"`
			O map[string]any `param:"o"`
		}](spec, nil)
		return err
	})
	check("wrong nested type", "cannot hold parameter x", func() error {
		_, err := actions.Decode[struct {
			A string `param:"a"`
			O inner  `param:"o"`
		}](spec, nil)
		return err
	})
	check("not a struct", "decode into a struct", func() error {
		_, err := actions.Decode[map[string]any](spec, nil)
		return err
	})
}

func TestHasDeferred(t *testing.T) {
	d := actions.Deferred{}
	for _, tt := range []struct {
		v    any
		want bool
	}{
		{d, true},
		{"x", false},
		{map[string]any{"a": []any{1, d}}, true},
		{[]any{map[string]any{"k": d}}, true},
		{map[string]any{"a": []any{1, "two"}}, false},
		{nil, false},
	} {
		if got := actions.HasDeferred(tt.v); got != tt.want {
			t.Errorf("HasDeferred(%#v) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestRetrier(t *testing.T) {
	for _, tt := range []struct {
		status int
		retry  bool
		msg    string // "" for success
	}{
		{200, false, ""}, {204, false, ""},
		{301, false, "301 Moved Permanently: b"},
		{400, false, "400 Bad Request: b"},
		{404, false, "404 Not Found: b"},
		{408, true, "408 Request Timeout: b"},
		{429, true, "429 Too Many Requests: b"},
		{500, true, "500 Internal Server Error: b"},
		{599, true, "599: b"},
	} {
		retry, err := actions.HTTPRetrier.Check(tt.status, []byte(" b\n"))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if retry != tt.retry || msg != tt.msg {
			t.Errorf("Check(%d) = %v, %q; want %v, %q", tt.status, retry, msg, tt.retry, tt.msg)
		}
	}
	if retry, _ := (actions.Retrier{}).Check(429, nil); retry {
		t.Error("429 retried without being a RetryCode")
	}
}

func TestRetryDefaults(t *testing.T) {
	if got := (actions.Retry{}).WithDefaults(); got != actions.DefaultRetry {
		t.Errorf("zero policy: %+v", got)
	}
	r := actions.Retry{Attempts: 3, Backoff: -1, MaxBackoff: time.Hour}
	want := actions.Retry{Attempts: 3, Backoff: actions.DefaultRetry.Backoff, MaxBackoff: time.Hour}
	if got := r.WithDefaults(); got != want {
		t.Errorf("%+v.WithDefaults() = %+v, want %+v", r, got, want)
	}
}
