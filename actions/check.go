package actions

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Check validates params against the declaration and returns a new map
// with defaults applied and values normalised to the declared types.
// Unknown parameters are errors. The input is not modified. Check is
// idempotent: what it returns passes it again unchanged.
func (s Spec) Check(params map[string]any) (map[string]any, error) {
	out, err := checkFields(s.Params, params, "")
	if err != nil {
		return nil, err
	}
	if s.Validate != nil {
		if err := s.Validate(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkFields(decl []Param, in map[string]any, prefix string) (map[string]any, error) {
	if err := checkKeys(decl, in, prefix, false); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(decl))
	err := eachValue(decl, in, prefix, func(i int, v any) error {
		out[decl[i].Name] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkKeys reports the first unknown key of in and, when rendered, a value
// that is or holds Deferred: Decode runs on rendered params only. One pass
// over the map serves both, as it runs for every job.
func checkKeys(decl []Param, in map[string]any, prefix string, rendered bool) error {
	var unrendered error
	// Declarations are a handful of parameters: a linear scan beats
	// building a set.
	for k, v := range in {
		if !declared(decl, k) {
			return unknownParam(decl, in, prefix)
		}
		if rendered && unrendered == nil {
			if sub, found := findDeferred(v); found {
				unrendered = &ParamError{Path: prefix + joinPath(k, sub), Msg: "was not rendered"}
			}
		}
	}
	return unrendered
}

// eachValue calls set with the index and the normalised value of each
// declared parameter that is given or has a default, and reports a missing
// required one. Check collects the values into a map, Decode into a
// struct: one set of rules for both.
func eachValue(decl []Param, in map[string]any, prefix string, set func(i int, v any) error) error {
	for i := range decl {
		v, err := paramValue(&decl[i], in, prefix)
		if err != nil {
			return err
		}
		if v == nil {
			continue // absent, without a default
		}
		if err := set(i, v); err != nil {
			return err
		}
	}
	return nil
}

// paramValue is p's value in in, normalised: the given one, else the
// default, else nil.
func paramValue(p *Param, in map[string]any, prefix string) (any, error) {
	if v := in[p.Name]; v != nil {
		return normalise(p, v, prefix+p.Name)
	}
	if p.Required {
		return nil, &ParamError{Path: prefix + p.Name, Msg: "required parameter is missing"}
	}
	if p.Default == nil {
		return nil, nil
	}
	// Normalised like a given value, so Do sees one type whether a value
	// was given or defaulted (a Duration declared with a "5s" default is a
	// time.Duration too).
	v, err := normalise(p, p.Default, prefix+p.Name)
	if err != nil {
		return nil, fmt.Errorf("invalid default: %w", err)
	}
	return v, nil
}

func declared(decl []Param, name string) bool {
	for i := range decl {
		if decl[i].Name == name {
			return true
		}
	}
	return false
}

// unknownParam reports the first unknown key in sorted order, so that the
// error is the same whatever the map's iteration order.
func unknownParam(decl []Param, in map[string]any, prefix string) error {
	keys := make([]string, 0, len(in))
	for k := range in {
		if !declared(decl, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return &ParamError{Path: prefix + keys[0], Msg: "unknown parameter" + suggest(decl)}
}

func suggest(decl []Param) string {
	if len(decl) == 0 {
		return " (this action takes none)"
	}
	names := make([]string, len(decl))
	for i, p := range decl {
		names[i] = p.Name
	}
	return fmt.Sprintf(" (known: %v)", names)
}

// paramType is what the package knows about one ParamType. Adding a type
// is adding its row to paramTypes.
type paramType struct {
	name string // in the reference and in errors
	// normalise converts a given value (never nil, never Deferred) to
	// the type's goTypes entry, or reports why it cannot.
	normalise func(p *Param, v any, path string) (any, error)
}

// paramTypes is indexed by ParamType.
var paramTypes [numParamTypes]paramType

func init() {
	// Filled here rather than where it is declared: normObject recurses
	// through checkFields and normalise back into this table, which a
	// package-level initializer may not do.
	paramTypes = [numParamTypes]paramType{
		String:     {"string", normString},
		Int:        {"integer", normInt},
		Bool:       {"bool", normBool},
		Duration:   {"duration", normDuration},
		StringMap:  {"map of strings", normStringMap},
		Map:        {"map", normMap},
		Object:     {"object", normObject},
		Any:        {"any", normAny},
		StringList: {"list of strings", normStringList},
		URL:        {"URL", normString},
	}
}

// goTypes, by ParamType, are what normalise returns for each type: the
// type a Do reads from checked params, and the field type that holds the
// parameter in a parameter struct. Apart from paramTypes, and initialised
// where declared, because the kinds' ParamsOf read it while the package's
// variables are initialised, before init runs.
var goTypes = [numParamTypes]reflect.Type{
	String:     reflect.TypeFor[string](),
	Int:        reflect.TypeFor[int64](),
	Bool:       reflect.TypeFor[bool](),
	Duration:   reflect.TypeFor[time.Duration](),
	StringMap:  reflect.TypeFor[map[string]string](),
	Map:        reflect.TypeFor[map[string]any](),
	Object:     reflect.TypeFor[map[string]any](),
	Any:        reflect.TypeFor[any](),
	StringList: reflect.TypeFor[[]string](),
	URL:        reflect.TypeFor[string](),
}

func (t ParamType) declared() bool { return t >= 0 && t < numParamTypes }

// normalise converts v to p's declared type. Deferred stands for any type
// until the value is rendered.
func normalise(p *Param, v any, path string) (any, error) {
	if _, ok := v.(Deferred); ok {
		return v, nil
	}
	if !p.Type.declared() {
		return nil, fmt.Errorf("%s: undeclared parameter type %v", path, p.Type)
	}
	return paramTypes[p.Type].normalise(p, v, path)
}

func wrongType(p *Param, v any, path string) error {
	return &ParamError{Path: path, Msg: fmt.Sprintf("want %s, got %s", p.Type, describe(v))}
}

// scalarText is a YAML scalar that the user meant as text: `to: 42`.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64, float64, bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

// The normalisers return v itself when it already has the declared type:
// boxing a string again costs an allocation, and values pass them twice
// per job (the worker's Check, then Decode).

func normString(p *Param, v any, path string) (any, error) {
	s, ok := scalarText(v)
	if !ok {
		return nil, wrongType(p, v, path)
	}
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
		return nil, &ParamError{Path: path, Msg: fmt.Sprintf("%q is not one of %v", s, p.Enum)}
	}
	if _, same := v.(string); same {
		return v, nil
	}
	return s, nil
}

func normInt(p *Param, v any, path string) (any, error) {
	var n int64
	ok := true
	switch x := v.(type) {
	case int64:
		return v, nil
	case int:
		n = int64(x)
	case uint64:
		n, ok = int64(x), x <= math.MaxInt64
	case float64:
		n, ok = floatInt(x)
	case json.Number:
		i, err := x.Int64()
		n, ok = i, err == nil
	default:
		ok = false
	}
	if !ok {
		return nil, wrongType(p, v, path)
	}
	return n, nil
}

// floatInt is f as an int64 when it is a whole number in range. The range
// check comes first: converting an out-of-range float is
// implementation-defined (it saturates on arm64).
func floatInt(f float64) (int64, bool) {
	if f < math.MinInt64 || f >= math.MaxInt64 || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

func normBool(p *Param, v any, path string) (any, error) {
	if _, ok := v.(bool); !ok {
		return nil, wrongType(p, v, path)
	}
	return v, nil
}

func normDuration(p *Param, v any, path string) (any, error) {
	switch d := v.(type) {
	case time.Duration:
		if d < 0 {
			return nil, &ParamError{Path: path, Msg: fmt.Sprintf("negative duration %v", d)}
		}
		return v, nil
	case string:
		dd, err := time.ParseDuration(d)
		if err != nil || dd < 0 {
			return nil, &ParamError{Path: path, Msg: fmt.Sprintf("invalid duration %q (use e.g. 500ms, 5s, 1m)", d)}
		}
		return dd, nil
	}
	return nil, wrongType(p, v, path)
}

func normStringMap(p *Param, v any, path string) (any, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, wrongType(p, v, path)
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := scalarText(x)
		switch {
		case ok:
			out[k] = s
		case x == Deferred{}:
			out[k] = "" // a header rendered later: its name is what Check can see
		default:
			return nil, &ParamError{Path: path + "." + k, Msg: fmt.Sprintf("want string, got %s", describe(x))}
		}
	}
	return out, nil
}

func normMap(p *Param, v any, path string) (any, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, wrongType(p, v, path)
	}
	return m, nil
}

func normObject(p *Param, v any, path string) (any, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, wrongType(p, v, path)
	}
	return checkFields(p.Fields, m, path+".")
}

func normAny(_ *Param, v any, _ string) (any, error) { return v, nil }

// normStringList accepts a list of scalars. At load an item may be
// Deferred (a template): it is kept as it is, counted, and checked once
// rendered. Errors name the list, with the item's position in the message,
// so the loader can point at the list in the file.
func normStringList(p *Param, v any, path string) (any, error) {
	var items []any
	switch x := v.(type) {
	case []string:
		if err := listLength(p, len(x), path); err != nil {
			return nil, err
		}
		return v, nil
	case []any:
		items = x
	default:
		return nil, wrongType(p, v, path)
	}
	if err := listLength(p, len(items), path); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	deferred := false
	for i, x := range items {
		if _, ok := x.(Deferred); ok {
			deferred = true
			continue
		}
		s, ok := scalarText(x)
		if !ok {
			return nil, &ParamError{Path: path, Msg: fmt.Sprintf("item %d: want string, got %s", i+1, describe(x))}
		}
		out = append(out, s)
	}
	if deferred {
		// A template's items are filled in by the render: keep the list
		// as it is.
		return items, nil
	}
	return out, nil
}

func listLength(p *Param, n int, path string) error {
	switch {
	case p.MinItems > 0 && n < p.MinItems:
		return &ParamError{Path: path, Msg: fmt.Sprintf("%d items, want at least %d", n, p.MinItems)}
	case p.MaxItems > 0 && n > p.MaxItems:
		return &ParamError{Path: path, Msg: fmt.Sprintf("%d items, more than the %d allowed", n, p.MaxItems)}
	}
	return nil
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = x
		}
		return out, true
	}
	return nil, false
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int, int64, uint64, float64, json.Number:
		return "number"
	case bool:
		return "bool"
	case map[string]any, map[string]string:
		return "map"
	case []any, []string:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// HasDeferred reports whether v is Deferred or holds a Deferred value in
// its maps and lists, at any depth. Validate functions skip such values:
// their checks wait for the rendered ones.
func HasDeferred(v any) bool {
	_, found := findDeferred(v)
	return found
}

// findDeferred returns the path of a Deferred value in v ("" for v
// itself, "body.items[2]" deeper down), looking through maps and lists.
func findDeferred(v any) (path string, found bool) {
	switch x := v.(type) {
	case Deferred:
		return "", true
	case map[string]any:
		for k, e := range x {
			if sub, ok := findDeferred(e); ok {
				return joinPath(k, sub), true
			}
		}
	case []any:
		for i, e := range x {
			if sub, ok := findDeferred(e); ok {
				return joinPath("["+strconv.Itoa(i)+"]", sub), true
			}
		}
	}
	return "", false
}

func joinPath(head, sub string) string {
	switch {
	case sub == "":
		return head
	case sub[0] == '[':
		return head + sub
	}
	return head + "." + sub
}
