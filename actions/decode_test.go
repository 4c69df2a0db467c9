package actions_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// testParams declare testSpec: every type, pointers for presence, a nested
// struct for the Object.
type testParams struct {
	S     *string
	Level string
	N     int64
	B     *bool
	D     time.Duration
	H     map[string]string
	M     map[string]any
	Any   any
	Req   string
	Obj   *testObj
}

func (p *testParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.S, actions.Param{Name: "s"})
	d.Param(&p.Level, actions.Param{Name: "level", Default: "info", Enum: []string{"info", "warn"}})
	d.Param(&p.N, actions.Param{Name: "n", Default: 10})
	d.Param(&p.B, actions.Param{Name: "b"})
	d.Param(&p.D, actions.Param{Name: "d", Default: "5s"})
	d.Param(&p.H, actions.Param{Name: "h"})
	d.Param(&p.M, actions.Param{Name: "m"})
	d.Param(&p.Any, actions.Param{Name: "any"})
	d.Param(&p.Req, actions.Param{Name: "req", Required: true})
	d.Param(&p.Obj, actions.Param{Name: "obj"})
}

type testObj struct {
	X int64
	Y string
}

func (o *testObj) DeclareParams(d *actions.Decl) {
	d.Param(&o.X, actions.Param{Name: "x", Required: true})
	d.Param(&o.Y, actions.Param{Name: "y", Default: "why"})
}

// The field types decide the parameter types.
func TestParamsOfTypes(t *testing.T) {
	want := map[string]actions.ParamType{
		"s": actions.String, "level": actions.String, "n": actions.Int, "b": actions.Bool, "d": actions.Duration,
		"h": actions.StringMap, "m": actions.Map, "any": actions.Any, "req": actions.String, "obj": actions.Object,
	}
	var names []string
	for _, p := range testSpec.Params {
		names = append(names, p.Name)
		if p.Type != want[p.Name] {
			t.Errorf("%s: %s, want %s", p.Name, p.Type, want[p.Name])
		}
	}
	if got := strings.Join(names, " "); got != "s level n b d h m any req obj" {
		t.Errorf("order %q, want the declaration's", got)
	}
	obj := testSpec.Params[len(testSpec.Params)-1].Fields
	if len(obj) != 2 || obj[0].Name != "x" || obj[0].Type != actions.Int || !obj[0].Required || obj[1].Default != "why" {
		t.Errorf("obj's fields %+v", obj)
	}
	if err := actions.Declared(testSpec); err != nil {
		t.Error(err)
	}
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

// An Object may be a struct rather than a pointer to one.
type flatParams struct{ O testObj }

func (p *flatParams) DeclareParams(d *actions.Decl) { d.Param(&p.O, actions.Param{Name: "o"}) }

func TestDecodeObjectByValue(t *testing.T) {
	spec := actions.Spec{Name: "o", Params: actions.ParamsOf[flatParams]()}
	s, err := actions.Decode[flatParams](spec, map[string]any{"o": map[string]any{"x": 2}})
	if err != nil || s.O != (testObj{X: 2, Y: "why"}) {
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

// oddParams is declared by whatever declareOdd does, so that each case
// below can make one mistake. Its fields: A holds a string, B an integer;
// C holds no parameter type, d is not exported.
type oddParams struct {
	A string
	B int64
	C chan int
	d string
}

var declareOdd func(p *oddParams, d *actions.Decl)

func (p *oddParams) DeclareParams(d *actions.Decl) { declareOdd(p, d) }

// badObj's declaration fails: an Object inherits its struct's mistakes.
type badObj struct{ X, Y string }

func (o *badObj) DeclareParams(d *actions.Decl) { d.Param(&o.X, actions.Param{Name: "x"}) }

// A struct and the parameters it declares cannot disagree: a parameter
// needs a field to point at, and ParamsOf panics on each mistake below,
// naming the field, as the kind's package initialises.
func TestDeclareRefusesMistakes(t *testing.T) {
	a := func(p *oddParams, d *actions.Decl) { d.Param(&p.A, actions.Param{Name: "a"}) }
	b := func(p *oddParams, d *actions.Decl) { d.Param(&p.B, actions.Param{Name: "b"}) }
	c := func(p *oddParams, d *actions.Decl) { d.Param(&p.C, actions.Param{Name: "c"}) }
	for _, tc := range []struct {
		name, want string
		declare    []func(p *oddParams, d *actions.Decl)
	}{
		{"a field without a parameter", "oddParams.C holds no parameter", []func(*oddParams, *actions.Decl){a, b}},
		{"a field of no parameter type", `parameter "c": field C: no parameter type is held by a chan int`, []func(*oddParams, *actions.Decl){a, b, c}},
		{"an unexported field", "field d is not exported", []func(*oddParams, *actions.Decl){func(p *oddParams, d *actions.Decl) {
			d.Param(&p.d, actions.Param{Name: "d"})
		}}},
		{"a pointer elsewhere", "does not point to a field", []func(*oddParams, *actions.Decl){func(_ *oddParams, d *actions.Decl) {
			d.Param(new(string), actions.Param{Name: "a"})
		}}},
		{"a field declared twice", "field A holds another parameter already", []func(*oddParams, *actions.Decl){a, func(p *oddParams, d *actions.Decl) {
			d.Param(&p.A, actions.Param{Name: "a2"})
		}}},
		{"a name declared twice", `parameter "a": declared twice`, []func(*oddParams, *actions.Decl){a, func(p *oddParams, d *actions.Decl) {
			d.Param(&p.B, actions.Param{Name: "a"})
		}}},
		{"a type the field cannot hold", "field A: a string holds a parameter of type string, not integer", []func(*oddParams, *actions.Decl){func(p *oddParams, d *actions.Decl) {
			d.Param(&p.A, actions.Param{Name: "a", Type: actions.Int})
		}}},
		{"hand-written Fields", "only a struct declares Fields", []func(*oddParams, *actions.Decl){func(p *oddParams, d *actions.Decl) {
			d.Param(&p.A, actions.Param{Name: "a", Fields: []actions.Param{{Name: "x"}}})
		}}},
	} {
		declareOdd = func(p *oddParams, d *actions.Decl) {
			for _, f := range tc.declare {
				f(p, d)
			}
		}
		if err := paramsOfPanic[oddParams](); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParamsOf panics with %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	declareOdd = func(p *oddParams, d *actions.Decl) {
		a(p, d)
		b(p, d)
	}
	if err := paramsOfPanic[oddParams](); err == nil || !strings.Contains(err.Error(), "oddParams.C holds no parameter") {
		t.Errorf("the mistakes' control: %v", err)
	}
}

// paramsOfPanic is the error ParamsOf[P] panics with.
func paramsOfPanic[P any, PD interface {
	*P
	actions.Declarer
}]() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err, _ = r.(error)
		}
	}()
	actions.ParamsOf[P, PD]()
	return nil
}

type objParams struct{ O *badObj }

func (p *objParams) DeclareParams(d *actions.Decl) { d.Param(&p.O, actions.Param{Name: "o"}) }

func TestDecodeRefusesOtherDeclarations(t *testing.T) {
	check := func(name, want string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, want)
		}
	}
	check("a nested mistake", "badObj.Y holds no parameter", paramsOfPanic[objParams]())

	hand := actions.Spec{Name: "h", Params: []actions.Param{{Name: "a", Type: actions.String}}}
	check("a hand-written list", `parameter "a" is not declared by a struct`, actions.Declared(hand))
	_, err := actions.Decode[oddParams](hand, nil)
	check("a hand-written list", `parameter "a" is not declared by a struct`, err)

	_, err = actions.Decode[flatParams](testSpec, map[string]any{"req": "r"})
	check("another struct", "declared by actions_test.testParams, not actions_test.flatParams", err)

	edited := testSpec
	edited.Params = append([]actions.Param(nil), testSpec.Params...)
	check("a list copied after ParamsOf", "were changed after ParamsOf", actions.Declared(edited))
	_, err = actions.Decode[testParams](edited, map[string]any{"req": "r"})
	check("a list copied after ParamsOf", "were changed after ParamsOf", err)

	// Edited in place, the parameters no longer agree with the fields.
	for name, edit := range map[string]func(ps []actions.Param){
		`testParams.N: parameter "n": a string is not held by a int64`:                                func(ps []actions.Param) { ps[2].Type = actions.String },
		`testParams.Obj: parameter "obj": actions: actions_test.testObj declares 2 parameters, not 1`: func(ps []actions.Param) { ps[9].Fields = ps[9].Fields[:1:1] },
		`testObj.X: parameter "x": a bool is not held by a int64`:                                     func(ps []actions.Param) { ps[9].Fields[0].Type = actions.Bool },
		`testParams.D: parameter "d": a ParamType(99) is not held`:                                    func(ps []actions.Param) { ps[4].Type = 99 },
	} {
		spec := actions.Spec{Name: "t", Params: actions.ParamsOf[testParams]()}
		if err := actions.Declared(spec); err != nil {
			t.Fatalf("fresh: %v", err)
		}
		edit(spec.Params)
		check("edited", name, actions.Declared(spec))
	}

	_, err = actions.Decode[testParams](actions.Spec{Name: "none"}, nil)
	check("no parameters", "no parameter is declared", err)
	if _, err := actions.Decode[struct{}](actions.Spec{Name: "none"}, nil); err != nil {
		t.Errorf("a kind without parameters: %v", err)
	}
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
