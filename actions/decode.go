package actions

import (
	"fmt"
	"reflect"
	"sync"
)

// Decode returns a job's rendered params as a P, the kind's parameter
// struct, with the rules Check applies: defaults, normalised types, no
// unknown key, every required parameter, and s.Validate's relations. It
// then assigns each declared parameter to the field of P tagged
// `param:"name"`. A value that was never rendered (Deferred), an unknown
// key or a wrong type is an error, never a zero value; Do reports it as a
// permanent failure. Params that Check already returned pass unchanged.
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
	var out, zero P
	pl, err := planOf(reflect.TypeFor[P](), s.Params)
	if err != nil {
		return zero, err
	}
	if err := checkKeys(s.Params, params, "", true); err != nil {
		return zero, err
	}
	if err := pl.decode(reflect.ValueOf(&out).Elem(), params, ""); err != nil {
		return zero, err
	}
	// Validate reads a checked map, so only a kind with relations to
	// check pays for one (Check's output passes the rules above unchanged).
	if s.Validate != nil {
		if _, err := s.Check(params); err != nil {
			return zero, err
		}
	}
	return out, nil
}

// plan decodes params into one struct type.
type plan struct {
	decl  []Param     // what the plan was built for
	slots []fieldSlot // by the index of the parameter in decl
}

// fieldSlot is where one parameter goes.
type fieldSlot struct {
	index int // of the struct field
	set   setter
}

// setter assigns a normalised value to a field; path names the parameter
// in errors.
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
	pl := &plan{decl: decl, slots: make([]fieldSlot, len(decl))}
	for i := range pl.slots {
		pl.slots[i].index = -1
	}
	for fi := range t.NumField() {
		sf := t.Field(fi)
		name, tagged := sf.Tag.Lookup("param")
		pi := paramIndex(decl, name)
		switch {
		case !tagged:
			return nil, fmt.Errorf("actions: %v.%s has no param tag", t, sf.Name)
		case !sf.IsExported():
			return nil, fmt.Errorf("actions: %v.%s is not exported", t, sf.Name)
		case pi < 0:
			return nil, fmt.Errorf("actions: %v.%s: no parameter %q is declared", t, sf.Name, name)
		case pl.slots[pi].index >= 0:
			return nil, fmt.Errorf("actions: %v.%s: parameter %q has two fields", t, sf.Name, name)
		}
		set, err := bindField(sf.Type, &decl[pi])
		if err != nil {
			return nil, fmt.Errorf("actions: %v.%s: %w", t, sf.Name, err)
		}
		pl.slots[pi] = fieldSlot{index: fi, set: set}
	}
	for i, sl := range pl.slots {
		if sl.index < 0 {
			return nil, fmt.Errorf("actions: %v has no field for parameter %q", t, decl[i].Name)
		}
	}
	return pl, nil
}

func paramIndex(decl []Param, name string) int {
	for i := range decl {
		if decl[i].Name == name {
			return i
		}
	}
	return -1
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
	return nil, fmt.Errorf("a field of type %v cannot hold parameter %s, a %s: use %v or *%v", ft, p.Name, p.Type, want, want)
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
		return nested.decode(f, m, path+".")
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

// decode assigns the values of in, normalised, to the fields of dst. Absent
// parameters without a default keep their zero value. The caller has
// checked in's keys: Decode for the parameters, normObject for an
// Object's fields.
func (pl *plan) decode(dst reflect.Value, in map[string]any, prefix string) error {
	return eachValue(pl.decl, in, prefix, func(i int, v any) error {
		sl := pl.slots[i]
		return sl.set(dst.Field(sl.index), v, prefix+pl.decl[i].Name)
	})
}
