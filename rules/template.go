package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A template is a string action parameter holding ${ expr } parts. "$${"
// writes a literal "${".
type template struct {
	src   string // as written, for a profile() template rendered when the job runs
	parts []tmplPart
	// profile: a part calls profile(), so the template is rendered when
	// the job runs (see profile.go); url: it is a URL parameter's.
	profile, url bool
	custom       []string // the custom profile fields its parts name
	// Of a profile template: the event fields its parts read, and the
	// accounts its profile() calls name (acctsVM: found by running them).
	fields  []namedField
	accts   []profileArg
	acctsVM bool
	size    int // a guess of the rendered length, to allocate once
	// single: the string is exactly one ${ } and renders to the
	// expression's value with its own type (an int stays an int).
	single bool
}

type tmplPart struct {
	lit  string      // literal text, when prog is nil
	src  string      // the expression as written, trimmed (for messages)
	prog *vm.Program // compiled expression
	fast fexpr       // prog on the fast path, when fast.kind is not 0
	raw  bool        // the expression is a raw(...) call
	// profile: the expression calls profile()
	profile bool
	esc     urlEsc // how the value is escaped (URL parameters)
}

// value returns the fast part's value as the VM would: a string, int or
// bool.
func (p *tmplPart) value(ev *imevent.Event) any {
	switch p.fast.kind {
	case fkString:
		return p.fast.s(ev)
	case fkInt:
		return p.fast.i(ev)
	}
	return p.fast.b(ev)
}

// appendFast writes the fast part's value as appendText writes the VM's.
func (p *tmplPart) appendFast(b *strings.Builder, ev *imevent.Event) {
	switch p.fast.kind {
	case fkString:
		b.WriteString(p.fast.s(ev))
	case fkInt:
		b.WriteString(strconv.Itoa(p.fast.i(ev)))
	default:
		b.WriteString(strconv.FormatBool(p.fast.b(ev)))
	}
}

// tmplSpan is one ${ } found by scanTemplate: the expression's byte offsets
// in the scanned string.
type tmplSpan struct {
	lit        string // literal text before the expression
	start, end int    // s[start:end] is the expression, between "${" and "}"
}

// scanTemplate splits s into literal text and ${ } expressions. It returns
// nil spans and a nil error when s holds no template. The closing brace is
// found by tracking nested braces and expr's string literals, so
// ${ {"a": "}"}.a } works.
func scanTemplate(s string) (spans []tmplSpan, tail string, err error) {
	if !strings.Contains(s, "${") {
		return nil, s, nil
	}
	var lit strings.Builder
	i := 0
	for i < len(s) {
		if strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		start := i + 2
		end, err := exprEnd(s, start)
		if err != nil {
			return nil, "", err
		}
		if strings.TrimSpace(s[start:end]) == "" {
			return nil, "", errors.New("empty ${ } in template")
		}
		spans = append(spans, tmplSpan{lit: lit.String(), start: start, end: end})
		lit.Reset()
		i = end + 1
	}
	if spans == nil { // only $${ escapes
		return nil, lit.String(), nil
	}
	return spans, lit.String(), nil
}

// exprEnd returns the index of the "}" closing the expression that starts
// at s[start].
func exprEnd(s string, start int) (int, error) {
	depth := 0
	for i := start; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			j := i + 1
			for ; j < len(s); j++ {
				if c != '`' && s[j] == '\\' {
					j++
					continue
				}
				if s[j] == c {
					break
				}
			}
			if j >= len(s) {
				return 0, errors.New("unterminated string literal inside ${ }")
			}
			i = j
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i, nil
			}
			depth--
		}
	}
	return 0, errors.New("unterminated ${ in template (missing })")
}

// render evaluates the template. A single-expression template returns the
// value, made JSON-compatible; otherwise the parts are joined as text.
func (t *template) render(x *evalCtx) (any, error) {
	if t.profile {
		if x.profiles == nil {
			return t.deferred(x)
		}
		x.setProfileFn()
	}
	if t.single {
		if t.parts[0].fast.kind != 0 {
			return t.parts[0].value(x.ev), nil
		}
		v, err := x.run(t.parts[0].prog)
		if err != nil {
			return nil, fmt.Errorf("${ %s }: %w", t.parts[0].src, err)
		}
		out, err := jsonValue(v)
		if err != nil {
			return nil, fmt.Errorf("${ %s }: %w", t.parts[0].src, err)
		}
		return out, nil
	}
	var b strings.Builder
	b.Grow(t.size)
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		if p.esc != escNone {
			if err := p.appendEscaped(&b, x); err != nil {
				return nil, fmt.Errorf("${ %s }: %w", p.src, err)
			}
			continue
		}
		if p.fast.kind != 0 {
			p.appendFast(&b, x.ev)
			continue
		}
		v, err := x.run(p.prog)
		if err != nil {
			return nil, fmt.Errorf("${ %s }: %w", p.src, err)
		}
		if err := appendText(&b, v); err != nil {
			return nil, fmt.Errorf("${ %s }: %w", p.src, err)
		}
	}
	return b.String(), nil
}

// appendEscaped writes the part's value escaped for its place in a URL.
func (p *tmplPart) appendEscaped(b *strings.Builder, x *evalCtx) error {
	var s string
	if p.fast.kind == fkString {
		s = p.fast.s(x.ev)
	} else {
		var text strings.Builder
		if p.fast.kind != 0 {
			p.appendFast(&text, x.ev)
		} else {
			v, err := x.run(p.prog)
			if err != nil {
				return err
			}
			if err := appendText(&text, v); err != nil {
				return err
			}
		}
		s = text.String()
	}
	b.WriteString(escapeURLValue(p.esc, s))
	return nil
}

// appendText writes v as it reads inside a sentence: strings as they are,
// numbers and bools in Go's shortest form, nil as nothing, lists and maps
// as JSON.
func appendText(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case string:
		b.WriteString(x)
		return nil
	case nil:
		return nil
	case int:
		b.WriteString(strconv.Itoa(x))
		return nil
	case bool:
		b.WriteString(strconv.FormatBool(x))
		return nil
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
		return nil
	}
	jv, err := jsonValue(v)
	if err != nil {
		return err
	}
	switch x := jv.(type) {
	case string: // durations, times
		b.WriteString(x)
		return nil
	case int: // other integer types
		b.WriteString(strconv.Itoa(x))
		return nil
	}
	data, err := json.Marshal(jv)
	if err != nil {
		return err
	}
	b.Write(data)
	return nil
}

// jsonValue converts an expression's result to the JSON-compatible values
// jobs carry through the queue: string, int, float64, bool, nil,
// map[string]any and []any. Durations and times become their text forms.
func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, int, float64, bool:
		return v, nil
	case time.Duration:
		return x.String(), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = ev
		}
		return out, nil
	}
	return jsonReflect(v)
}

// jsonReflect is jsonValue for the types it does not name: other integer
// and float widths, named strings and bools, typed slices, arrays and maps
// with string keys.
func jsonReflect(v any) (any, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return float64(u), nil
		}
		return int(u), nil
	case reflect.Float32:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		return jsonReflectList(rv)
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return jsonReflectMap(rv)
		}
	}
	return nil, fmt.Errorf("value of type %T cannot be an action parameter", v)
}

func jsonReflectList(rv reflect.Value) (any, error) {
	out := make([]any, rv.Len())
	for i := range out {
		ev, err := jsonValue(rv.Index(i).Interface())
		if err != nil {
			return nil, err
		}
		out[i] = ev
	}
	return out, nil
}

func jsonReflectMap(rv reflect.Value) (any, error) {
	out := make(map[string]any, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		ev, err := jsonValue(it.Value().Interface())
		if err != nil {
			return nil, err
		}
		out[it.Key().String()] = ev
	}
	return out, nil
}
