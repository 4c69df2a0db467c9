package actions

import (
	"fmt"
	"reflect"
	"sync"
)

// Decode returns a job's rendered params as a P, the kind's parameter
// struct. It checks them with s.Check first (Check is idempotent, so the
// params the worker already checked pass unchanged), so Do sees every
// default, every normalised type and every relation s.Validate enforces,
// then assigns each declared parameter to the field of P tagged
// `param:"name"`. A value that was never rendered (Deferred), an unknown
// key or a wrong type is an error, never a zero value; Do reports it as a
// permanent failure.
//
// P is a struct with one exported field per declared parameter, and no
// other fields. A field has the type Check normalises its parameter to
// (String: string, Int: int64, Bool: bool, Duration: time.Duration,
// StringMap: map[string]string, Map and Object: map[string]any, Any: any)
// or a pointer to that type, nil when the parameter is absent and has no
// default. An Object may also be a struct, or a pointer to one, declared
// the same way over the Object's Fields. A P that does not fit s fails
// every call, naming the field: a mistake the kind's first test shows.
func Decode[P any](s Spec, params map[string]any) (P, error) {
	var out P
	if path, found := findDeferred(params); found {
		return out, &ParamError{Path: path, Msg: "was not rendered"}
	}
	checked, err := s.Check(params)
	if err != nil {
		return out, err
	}
	pl, err := planOf(reflect.TypeFor[P](), s.Params)
	if err != nil {
		return out, err
	}
	return out, pl.fill(reflect.ValueOf(&out).Elem(), checked, "")
}

// plan assigns checked params to the fields of one struct type.
type plan struct {
	decl   []Param // what the plan was built for
	fields []fieldPlan
}

type fieldPlan struct {
	name  string // the parameter
	index int    // of the struct field
	set   setter
}

// setter assigns a checked value to a field; path names the parameter in
// errors.
type setter func(f reflect.Value, v any, path string) error

// plans caches one plan per parameter struct type: building one reflects
// over every field, and Decode runs for every job.
var plans sync.Map // reflect.Type → *plan

func planOf(t reflect.Type, decl []Param) (*plan, error) {
	if c, ok := plans.Load(t); ok && sameDecl(c.(*plan).decl, decl) {
		return c.(*plan), nil
	}
	pl, err := buildPlan(t, decl)
	if err != nil {
		return nil, err
	}
	plans.Store(t, pl)
	return pl, nil
}

// sameDecl: a kind's declaration is a package variable, so a cached plan
// fits when it was built from the same backing array.
func sameDecl(a, b []Param) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func buildPlan(t reflect.Type, decl []Param) (*plan, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("actions: parameters decode into a struct, not %v", t)
	}
	pl := &plan{decl: decl}
	bound := make(map[string]bool, len(decl))
	for i := range t.NumField() {
		sf := t.Field(i)
		name, tagged := sf.Tag.Lookup("param")
		p := findParam(decl, name)
		switch {
		case !tagged:
			return nil, fmt.Errorf("actions: %v.%s has no param tag", t, sf.Name)
		case !sf.IsExported():
			return nil, fmt.Errorf("actions: %v.%s is not exported", t, sf.Name)
		case p == nil:
			return nil, fmt.Errorf("actions: %v.%s: no parameter %q is declared", t, sf.Name, name)
		case bound[name]:
			return nil, fmt.Errorf("actions: %v.%s: parameter %q has two fields", t, sf.Name, name)
		}
		set, err := bindField(sf.Type, p)
		if err != nil {
			return nil, fmt.Errorf("actions: %v.%s: %w", t, sf.Name, err)
		}
		bound[name] = true
		pl.fields = append(pl.fields, fieldPlan{name: name, index: i, set: set})
	}
	for _, p := range decl {
		if !bound[p.Name] {
			return nil, fmt.Errorf("actions: %v has no field for parameter %q", t, p.Name)
		}
	}
	return pl, nil
}

func findParam(decl []Param, name string) *Param {
	for i := range decl {
		if decl[i].Name == name {
			return &decl[i]
		}
	}
	return nil
}

// bindField chooses how a field of type ft receives p's checked values.
func bindField(ft reflect.Type, p *Param) (setter, error) {
	if !p.Type.declared() {
		return nil, fmt.Errorf("undeclared parameter type %v", p.Type)
	}
	want := paramTypes[p.Type].goType
	switch {
	case ft == want:
		return setValue, nil
	case ft.Kind() == reflect.Pointer && ft.Elem() == want:
		return setPointer, nil
	case p.Type == Object:
		return bindObject(ft, p.Fields)
	}
	return nil, fmt.Errorf("a %v cannot hold %s (a %s: use %v or *%v)", ft, p.Name, p.Type, want, want)
}

// bindObject decodes an Object into a struct, or a pointer to one.
func bindObject(ft reflect.Type, fields []Param) (setter, error) {
	st, ptr := ft, ft.Kind() == reflect.Pointer
	if ptr {
		st = ft.Elem()
	}
	nested, err := buildPlan(st, fields)
	if err != nil {
		return nil, err
	}
	return func(f reflect.Value, v any, path string) error {
		m, ok := v.(map[string]any)
		if !ok {
			return &ParamError{Path: path, Msg: fmt.Sprintf("want object, got %s", describe(v))}
		}
		if ptr {
			f.Set(reflect.New(st))
			f = f.Elem()
		}
		return nested.fill(f, m, path+".")
	}, nil
}

func setValue(f reflect.Value, v any, path string) error {
	rv := reflect.ValueOf(v)
	if v == nil || !rv.Type().AssignableTo(f.Type()) {
		return &ParamError{Path: path, Msg: fmt.Sprintf("want %v, got %T", f.Type(), v)}
	}
	f.Set(rv)
	return nil
}

func setPointer(f reflect.Value, v any, path string) error {
	p := reflect.New(f.Type().Elem())
	if err := setValue(p.Elem(), v, path); err != nil {
		return err
	}
	f.Set(p)
	return nil
}

// fill assigns checked to the fields of dst. Absent parameters keep their
// zero value: Check has applied the defaults and required the rest.
func (pl *plan) fill(dst reflect.Value, checked map[string]any, prefix string) error {
	for _, fp := range pl.fields {
		v, ok := checked[fp.name]
		if !ok {
			continue
		}
		if err := fp.set(dst.Field(fp.index), v, prefix+fp.name); err != nil {
			return err
		}
	}
	return nil
}
