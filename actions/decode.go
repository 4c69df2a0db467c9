package actions

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// A kind declares its parameters once, as a struct whose fields hold them:
// the struct's DeclareParams method binds each field to its parameter's
// name, documentation, default and limits, the way flag.StringVar binds a
// variable to a flag, and the field's Go type is the parameter's type.
// ParamsOf derives the Spec's []Param from it, and Decode fills the struct
// from a job's params, so the two cannot drift: a parameter without a
// field does not compile, and a field without a parameter stops the
// program as its package initialises.
//
// Declarations are Go code rather than struct tags because a tag is a
// literal: it cannot quote the limits the documentation cites (MaxDenyCode,
// IM's sizes), and the examples' quotes and backticks would need escaping.

// Declarer is a parameter struct, declared by its pointer method.
type Declarer interface {
	// DeclareParams calls d.Param once for each field of the struct,
	// in the order the action reference lists them.
	DeclareParams(d *Decl)
}

// Decl collects the parameters a struct declares; see Declarer.
type Decl struct {
	base   reflect.Value // the struct DeclareParams was called on
	fields [][]int       // by parameter: the index of its field
	params []Param
	err    error
}

// declaration is what a parameter struct declares: the parameters and
// where each one goes.
type declaration struct {
	typ    reflect.Type
	params []Param     // as the Spec lists them
	slots  []fieldSlot // by the index of the parameter in params
}

// fieldSlot is where one parameter goes.
type fieldSlot struct {
	index []int // of the struct field, through embedded structs
	set   setter
}

// setter assigns a normalised value to a field; path names the parameter
// in errors.
type setter func(f reflect.Value, v any, path string) error

var declarerType = reflect.TypeFor[Declarer]()

// ParamsOf returns the parameters P declares, for a Spec's Params; Decode
// fills a P from a job's params checked against them. A kind's Params
// are a package variable, so ParamsOf runs as the package initialises,
// and it panics on a mistake in the declaration (a field without a
// parameter, a type the field cannot hold), naming the field: the
// program cannot start with a kind that could never decode its jobs.
func ParamsOf[P any, PD interface {
	*P
	Declarer
}]() []Param {
	dc, err := declare(reflect.TypeFor[P]())
	if err != nil {
		panic(err)
	}
	return dc.params
}

// declare runs t's DeclareParams, binds each parameter to its field and
// checks that every field of t holds one. It runs while package variables
// are initialised, so it calls what it needs directly: only direct calls
// tell the initialisation order what to set up first (goTypes), which
// DeclareParams, an interface method, would not.
func declare(t reflect.Type) (*declaration, error) {
	dc := &declaration{typ: t}
	v := reflect.New(t)
	d := &Decl{base: v.Elem()}
	v.Interface().(Declarer).DeclareParams(d)
	if d.err != nil {
		return nil, d.err
	}
	for i := range d.params {
		if err := dc.bind(d.fields[i], &d.params[i]); err != nil {
			return nil, fmt.Errorf("actions: %v: parameter %q: %w", t, d.params[i].Name, err)
		}
	}
	for _, sf := range reflect.VisibleFields(t) {
		if !isContainer(sf) && dc.slotOf(sf.Index) < 0 {
			return nil, fmt.Errorf("actions: %v.%s holds no parameter: declare it in DeclareParams", t, sf.Name)
		}
	}
	for i := range dc.params {
		dc.params[i].decl = dc
	}
	return dc, nil
}

// isContainer: an embedded struct's fields hold parameters, not itself.
func isContainer(sf reflect.StructField) bool {
	return sf.Anonymous && sf.Type.Kind() == reflect.Struct
}

func (dc *declaration) slotOf(index []int) int {
	for i, sl := range dc.slots {
		if slices.Equal(sl.index, index) {
			return i
		}
	}
	return -1
}

// Param declares p, held by the field that field points to: a field of
// the struct whose DeclareParams was called. The field's type is the
// parameter's (see ParamType for which Go type holds which), so p.Type is
// left out, except to say that a string is a URL; a struct implementing
// Declarer, or a pointer to one (nil when absent), is an Object whose
// Fields it declares. Any other field may be a pointer to its type, nil
// when the parameter is absent and has no default.
func (d *Decl) Param(field any, p Param) {
	index, err := d.fieldOf(field)
	if err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("actions: %v: parameter %q: %w", d.base.Type(), p.Name, err)
		}
		return
	}
	d.fields = append(d.fields, index)
	d.params = append(d.params, p)
}

// bind adds p, held by the field at index, to the declaration.
func (dc *declaration) bind(index []int, p *Param) error {
	sf := dc.typ.FieldByIndex(index)
	switch {
	case !sf.IsExported():
		return fmt.Errorf("field %s is not exported", sf.Name)
	case dc.slotOf(index) >= 0:
		return fmt.Errorf("field %s holds another parameter already", sf.Name)
	case paramIndex(dc.params, p.Name) >= 0:
		return errors.New("declared twice")
	}
	set, err := bindField(sf.Type, p)
	if err != nil {
		return fmt.Errorf("field %s: %w", sf.Name, err)
	}
	dc.params = append(dc.params, *p)
	dc.slots = append(dc.slots, fieldSlot{index: index, set: set})
	return nil
}

// fieldOf finds the field a pointer points to.
func (d *Decl) fieldOf(field any) ([]int, error) {
	fp := reflect.ValueOf(field)
	if fp.Kind() != reflect.Pointer || fp.IsNil() {
		return nil, fmt.Errorf("want a pointer to a field, got %T", field)
	}
	for _, sf := range reflect.VisibleFields(d.base.Type()) {
		f := d.base.FieldByIndex(sf.Index)
		if !isContainer(sf) && f.Addr().Pointer() == fp.Pointer() && sf.Type == fp.Type().Elem() {
			return sf.Index, nil
		}
	}
	return nil, fmt.Errorf("%T does not point to a field of %v", field, d.base.Type())
}

func paramIndex(decl []Param, name string) int {
	for i := range decl {
		if decl[i].Name == name {
			return i
		}
	}
	return -1
}

// bindField sets p.Type (and an Object's Fields) from the type of its
// field, ft, and returns how the field receives p's checked values.
func bindField(ft reflect.Type, p *Param) (setter, error) {
	elem, ptr := ft, ft.Kind() == reflect.Pointer
	if ptr {
		elem = ft.Elem()
	}
	if elem.Kind() == reflect.Struct && reflect.PointerTo(elem).Implements(declarerType) {
		return bindObject(elem, ptr, p)
	}
	t, ok := typeHeldBy(elem)
	switch {
	case !ok:
		return nil, fmt.Errorf("no parameter type is held by a %v", ft)
	case p.Fields != nil:
		return nil, errors.New("only a struct declares Fields")
	case p.Type == URL && t == String:
		t = URL
	case p.Type != t && p.Type != String: // String is the zero value: not set
		return nil, fmt.Errorf("a %v holds a parameter of type %s, not %s", ft, t, p.Type)
	}
	p.Type = t
	if ptr {
		return setPointer, nil
	}
	return setValue, nil
}

// typeHeldBy is the parameter type whose values have Go type t: the first
// of goTypes, so a string is a String and a map[string]any a Map.
func typeHeldBy(t reflect.Type) (ParamType, bool) {
	for pt := range numParamTypes {
		if goTypes[pt] == t {
			return pt, true
		}
	}
	return 0, false
}

// bindObject declares an Object by its struct, st, held by value or by
// pointer.
func bindObject(st reflect.Type, ptr bool, p *Param) (setter, error) {
	if p.Type != Object && p.Type != String || p.Fields != nil {
		return nil, fmt.Errorf("a struct holds an object, declared by its own DeclareParams")
	}
	nested, err := declare(st)
	if err != nil {
		return nil, err
	}
	p.Type, p.Fields = Object, nested.params
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

// Declared reports whether s's parameters and the parameter struct that
// declares them (see ParamsOf) agree: every parameter held by a field of
// its type, every field of the struct holding one, and nested objects
// alike. ParamsOf makes them so; Params written by hand or edited
// afterwards do not pass (and Decode fails every job of a kind whose
// Params are not ParamsOf's). The tests of the registered kinds call it.
func Declared(s Spec) error {
	if len(s.Params) == 0 {
		return nil
	}
	dc, err := declarationOf(nil, s.Params)
	if err != nil {
		return err
	}
	return dc.agree(s.Params)
}

// agree checks params against the fields of dc's struct.
func (dc *declaration) agree(params []Param) error {
	if len(dc.slots) != len(params) {
		return fmt.Errorf("actions: %v declares %d parameters, not %d", dc.typ, len(dc.slots), len(params))
	}
	for i, p := range params {
		sf := dc.typ.FieldByIndex(dc.slots[i].index)
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if err := agreeField(p, ft); err != nil {
			return fmt.Errorf("actions: %v.%s: parameter %q: %w", dc.typ, sf.Name, p.Name, err)
		}
	}
	n := 0
	for _, sf := range reflect.VisibleFields(dc.typ) {
		if !isContainer(sf) {
			n++
		}
	}
	if n != len(params) {
		return fmt.Errorf("actions: %v has %d fields for %d parameters", dc.typ, n, len(params))
	}
	return nil
}

// agreeField checks that a field of type ft (a pointer's element) holds p.
func agreeField(p Param, ft reflect.Type) error {
	if p.Type != Object {
		if !p.Type.declared() || goTypes[p.Type] != ft {
			return fmt.Errorf("a %s is not held by a %v", p.Type, ft)
		}
		return nil
	}
	if len(p.Fields) == 0 || p.Fields[0].decl == nil || p.Fields[0].decl.typ != ft {
		return fmt.Errorf("its fields are not declared by its field's %v", ft)
	}
	return p.Fields[0].decl.agree(p.Fields)
}

// declarationOf is the declaration of params, which Decode fills a t from
// (any type when t is nil).
func declarationOf(t reflect.Type, params []Param) (*declaration, error) {
	if len(params) == 0 {
		if t != nil && (t.Kind() != reflect.Struct || t.NumField() > 0) {
			return nil, fmt.Errorf("actions: no parameter is declared for a %v to hold", t)
		}
		return &declaration{typ: t}, nil
	}
	dc := params[0].decl
	switch {
	case dc == nil:
		return nil, fmt.Errorf("actions: parameter %q is not declared by a struct (see ParamsOf)", params[0].Name)
	case !sameDecl(dc.params, params):
		return nil, fmt.Errorf("actions: the parameters %v declares were changed after ParamsOf", dc.typ)
	case t != nil && t != dc.typ:
		return nil, fmt.Errorf("actions: the parameters are declared by %v, not %v", dc.typ, t)
	}
	return dc, nil
}

// sameDecl: a kind's Params are a package variable from ParamsOf, so they
// are its declaration when they share its backing array.
func sameDecl(a, b []Param) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Decode returns a job's rendered params as a P, the kind's parameter
// struct, whose declaration (ParamsOf[P]) must be s.Params, with the rules
// Check applies: defaults, normalised types, no unknown key, every
// required parameter, and s.Validate's relations. A value that was never
// rendered (Deferred), an unknown key or a wrong type is an error, never a
// zero value; Do reports it as a permanent failure. Params that Check
// already returned pass unchanged.
func Decode[P any](s Spec, params map[string]any) (P, error) {
	var out, zero P
	dc, err := declarationOf(reflect.TypeFor[P](), s.Params)
	if err != nil {
		return zero, err
	}
	if err := checkKeys(s.Params, params, "", true); err != nil {
		return zero, err
	}
	if err := dc.decode(reflect.ValueOf(&out).Elem(), params, ""); err != nil {
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

// decode assigns the values of in, normalised, to the fields of dst. Absent
// parameters without a default keep their zero value. The caller has
// checked in's keys: Decode for the parameters, normObject for an
// Object's fields.
func (dc *declaration) decode(dst reflect.Value, in map[string]any, prefix string) error {
	return eachValue(dc.params, in, prefix, func(i int, v any) error {
		sl := dc.slots[i]
		f := dst.Field(sl.index[0])
		if len(sl.index) > 1 {
			f = dst.FieldByIndex(sl.index)
		}
		return sl.set(f, v, prefix+dc.params[i].Name)
	})
}
