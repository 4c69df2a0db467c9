package imcallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The tests of this file hold every layer generated from imevent.Fields to the
// table; TestAppendEventJSONIsMarshal (every imevent.Event field, so every row)
// holds imevent.AppendEventJSON to encoding/json, and rules' TestEnvIsTable holds
// the expression environment and field readers to it.

// TestFieldsTable checks the table itself: what genfields refuses, said as
// a test failure too.
func TestFieldsTable(t *testing.T) {
	seen := map[string]bool{}
	cbType := reflect.TypeFor[Callback]()
	for _, f := range imevent.Fields {
		if seen[f.Name] {
			t.Errorf("%s: declared twice", f.Name)
		}
		seen[f.Name] = true
		if f.Type != "string" && f.Type != "int" {
			t.Errorf("%s: Type %q, want string or int", f.Name, f.Type)
		}
		if f.Doc == "" || strings.Contains(f.Doc, "\n") {
			t.Errorf("%s: Doc must be one line", f.Name)
		}
		if len(f.From) == 0 {
			t.Errorf("%s: no command carries it", f.Name)
		}
		for cmd, src := range f.From {
			if !imevent.IsCommand(cmd) {
				t.Errorf("%s: From names %q, not a command", f.Name, cmd)
			}
			if src < imevent.FromQuery || src > imevent.Derived {
				t.Errorf("%s: %s: unknown source %d", f.Name, cmd, src)
			}
			if src == imevent.FromQuery {
				if cf, ok := cbType.FieldByName(f.CallbackField()); !ok || cf.Type.String() != f.Type {
					t.Errorf("%s: from the query, but Callback has no %s %s", f.Name, f.CallbackField(), f.Type)
				}
			}
		}
	}
	for _, cmd := range imevent.Commands {
		if imevent.Lists[cmd] == "" {
			t.Errorf("%s: no list in Lists", cmd)
		}
	}
	if len(imevent.Lists) != len(imevent.Commands) {
		t.Errorf("Lists has %d commands, imevent.Commands %d", len(imevent.Lists), len(imevent.Commands))
	}
}

// TestEventIsTable: imevent.Event's fields are the table's rows, in order, with
// their types and JSON keys.
func TestEventIsTable(t *testing.T) {
	typ := reflect.TypeFor[imevent.Event]()
	var got, want []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		got = append(got, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag))
	}
	for _, f := range imevent.Fields {
		want = append(want, fmt.Sprintf("%s %s json:%q", f.Name, f.Type, f.Name))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Event is stale; run go generate ./...\n got  %q\n want %q", got, want)
	}
}

// TestBodyIsTable: the wire body has CallbackCommand, every field some
// command reads from the top level, and each list with the fields some
// command reads from its elements, with their wire types.
func TestBodyIsTable(t *testing.T) {
	field := func(name, typ string) string { return fmt.Sprintf("%s %s json:%q", name, typ, name) }
	wire := func(f imevent.Field) string {
		if f.Wire != "" {
			return f.Wire
		}
		return f.Type
	}
	want := []string{field("CallbackCommand", "string")}
	for _, f := range imevent.Fields {
		if slices.Contains(slices.Collect(maps.Values(f.From)), imevent.FromBody) {
			want = append(want, field(f.Name, wire(f)))
		}
	}
	var lists []string
	for _, cmd := range imevent.Commands {
		if !slices.Contains(lists, imevent.Lists[cmd]) {
			lists = append(lists, imevent.Lists[cmd])
		}
	}
	for _, l := range lists {
		if f, ok := scalarOf(l); ok {
			want = append(want, field(l, "[]"+wire(f)))
			continue
		}
		var elem []string
		for _, f := range imevent.Fields {
			for _, cmd := range imevent.Commands {
				if imevent.Lists[cmd] == l && f.From[cmd] == imevent.FromElem {
					elem = append(elem, fmt.Sprintf("%s %s %q", f.Name, wire(f), fmt.Sprintf("json:%q", f.Name)))
					break
				}
			}
		}
		want = append(want, field(l, "[]struct { "+strings.Join(elem, "; ")+" }"))
	}
	typ := reflect.TypeFor[body]()
	var got []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		got = append(got, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag))
	}
	if !slices.Equal(got, want) {
		t.Errorf("body is stale; run go generate ./...\n got  %q\n want %q", got, want)
	}
}

// TestDecodeSamplesAsTable decodes every sample callback and checks each
// event field by field against the table read over the body as plain JSON:
// a field the command carries has the value at its source, any other is
// zero.
func TestDecodeSamplesAsTable(t *testing.T) {
	cmds := map[string]bool{}
	for _, name := range callbacks.Names() {
		data := callbacks.Must(name)
		var head struct{ CallbackCommand string }
		if err := json.Unmarshal(data, &head); err != nil {
			t.Fatal(err)
		}
		cmds[head.CallbackCommand] = true
		t.Run(name, func(t *testing.T) {
			checkAsTable(t, data, head.CallbackCommand)
		})
	}
	for _, cmd := range imevent.Commands {
		if !cmds[cmd] {
			t.Errorf("no sample of %s in examples/callbacks", cmd)
		}
	}
}

// TestDecodeReadsOnlyTableFields decodes, for every command, a body that
// holds every field of the table at the top level and in two elements of
// every list, each with a value of its own: every field the command
// carries must come from its own source, every other must stay zero. Once
// with every key (json.Unmarshal's path), once with the body's keys only
// (decodeFast's).
func TestDecodeReadsOnlyTableFields(t *testing.T) {
	for _, cmd := range imevent.Commands {
		for _, tight := range []bool{false, true} {
			bodyKeys := map[string]bool{}
			elemKeys := map[string]bool{}
			typ := reflect.TypeFor[body]()
			for i := range typ.NumField() {
				f := typ.Field(i)
				bodyKeys[f.Name] = true
				if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
					for j := range f.Type.Elem().NumField() {
						elemKeys[f.Name+"."+f.Type.Elem().Field(j).Name] = true
					}
				}
			}
			value := func(f imevent.Field, where string, k int) any {
				if f.Type == "int" {
					return 1000*len(where) + 10*k + slices.IndexFunc(imevent.Fields, func(g imevent.Field) bool { return g.Name == f.Name })
				}
				return fmt.Sprintf("%s-%s-%d", where, f.Name, k)
			}
			top := map[string]any{"CallbackCommand": cmd}
			for _, f := range imevent.Fields {
				if f.Name != "CallbackCommand" && (!tight || bodyKeys[f.Name]) {
					top[f.Name] = value(f, "top", 0)
				}
			}
			for _, l := range imevent.Lists {
				var elems []any
				for k := range 2 {
					if f, ok := scalarOf(l); ok {
						elems = append(elems, value(f, l, k+1))
						continue
					}
					e := map[string]any{}
					for _, f := range imevent.Fields {
						if !tight || elemKeys[l+"."+f.Name] {
							e[f.Name] = value(f, l, k+1)
						}
					}
					elems = append(elems, e)
				}
				top[l] = elems
			}
			data, err := json.Marshal(top)
			if err != nil {
				t.Fatal(err)
			}
			var b body
			if took := b.decodeFast(data); took != tight {
				t.Fatalf("%s: decodeFast took the body: %v, want %v", cmd, took, tight)
			}
			t.Run(fmt.Sprintf("%s/tight=%v", short(cmd), tight), func(t *testing.T) {
				checkAsTable(t, data, cmd)
			})
		}
	}
}

func short(cmd string) string { return strings.TrimPrefix(cmd, "Sns.Callback") }

// scalarOf is the field each element of list is, when list holds plain
// values rather than objects (imevent.Command.Scalar).
func scalarOf(list string) (imevent.Field, bool) {
	for _, c := range imevent.CommandTable {
		if c.List == list && c.Scalar != "" {
			i := slices.IndexFunc(imevent.Fields, func(f imevent.Field) bool { return f.Name == c.Scalar })
			return imevent.Fields[i], true
		}
	}
	return imevent.Field{}, false
}

// checkAsTable decodes data as cmd and compares every field of every event
// with what the table says, reading the body as plain JSON.
func checkAsTable(t *testing.T, data []byte, cmd string) {
	t.Helper()
	cb := newCB(cmd)
	if err := Decode(data, cb); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatal(err)
	}
	list, _ := top[imevent.Lists[cmd]].([]any)
	if len(cb.Events) != len(list) {
		t.Fatalf("%d events for %d elements of %s", len(cb.Events), len(list), imevent.Lists[cmd])
	}
	cbv := reflect.ValueOf(cb).Elem()
	for i := range cb.Events {
		ev := reflect.ValueOf(&cb.Events[i]).Elem()
		elem, _ := list[i].(map[string]any)
		for _, f := range imevent.Fields {
			field := ev.FieldByName(f.Name)
			if !field.IsValid() {
				t.Fatalf("Event has no field %s; run go generate ./...", f.Name)
			}
			got := field.Interface()
			var want any
			switch f.From[cmd] {
			case 0:
				want = reflect.Zero(field.Type()).Interface()
			case imevent.FromQuery:
				want = cbv.FieldByName(f.CallbackField()).Interface()
			case imevent.FromBody:
				want = jsonValue(t, f, top[f.Name])
			case imevent.FromElem:
				if _, ok := scalarOf(imevent.Lists[cmd]); ok {
					want = jsonValue(t, f, list[i])
				} else {
					want = jsonValue(t, f, elem[f.Name])
				}
			case imevent.Derived:
				want = derived(t, f, i, len(list))
			}
			if f.Name == "EventTime" && want == 0 {
				want = int(cb.ReceivedAt.UnixMilli()) // the table's documented fallback
			}
			if got != want {
				t.Errorf("event %d: %s = %#v, want %#v (%s)", i, f.Name, got, want, sourceName(f, cmd))
			}
		}
	}
}

func sourceName(f imevent.Field, cmd string) string {
	if s := f.From[cmd]; s != 0 {
		return s.String()
	}
	return "not carried"
}

// jsonValue is v, read by encoding/json with UseNumber, as f's type; a
// missing key is the zero value.
func jsonValue(t *testing.T, f imevent.Field, v any) any {
	t.Helper()
	switch f.Type {
	case "string":
		s, _ := v.(string)
		return s
	case "int":
		if v == nil {
			return 0
		}
		n, err := v.(json.Number).Int64()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		return int(n)
	}
	t.Fatalf("%s: type %s", f.Name, f.Type)
	return nil
}

// derived is the value of a imevent.Derived field of element i of n.
func derived(t *testing.T, f imevent.Field, i, n int) any {
	t.Helper()
	switch f.Name {
	case "PairIndex":
		return i
	case "PairCount":
		return n
	}
	t.Fatalf("derived field %s: teach events (callback.go), derived and tableEvents how it is derived", f.Name)
	return nil
}

// tableEvents is the reference for the generated mapping: cb's events
// built from a decoded body by reflection, field by field as the table
// says. cb's command must be known and its list within bounds.
func tableEvents(t *testing.T, b *body, cb *Callback) []imevent.Event {
	t.Helper()
	bv := reflect.ValueOf(b).Elem()
	list := bv.FieldByName(imevent.Lists[cb.Command])
	out := make([]imevent.Event, list.Len())
	for i := range out {
		ev := reflect.ValueOf(&out[i]).Elem()
		for _, f := range imevent.Fields {
			var v reflect.Value
			switch f.From[cb.Command] {
			case 0:
				continue
			case imevent.FromQuery:
				v = reflect.ValueOf(cb).Elem().FieldByName(f.CallbackField())
			case imevent.FromBody:
				v = bv.FieldByName(f.Name)
			case imevent.FromElem:
				v = list.Index(i)
				if v.Kind() == reflect.Struct {
					v = v.FieldByName(f.Name)
				}
			case imevent.Derived:
				v = reflect.ValueOf(derived(t, f, i, len(out)))
			}
			dst := ev.FieldByName(f.Name)
			if !dst.IsValid() || !v.IsValid() {
				t.Fatalf("%s: no such field in imevent.Event or body; run go generate ./...", f.Name)
			}
			switch dst.Kind() {
			case reflect.String:
				dst.SetString(v.String())
			case reflect.Int:
				dst.SetInt(v.Int())
			}
		}
		if out[i].EventTime == 0 {
			out[i].EventTime = int(cb.ReceivedAt.UnixMilli())
		}
	}
	return out
}
