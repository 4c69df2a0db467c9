package main

import (
	"fmt"
	"go/token"
	"slices"
	"strings"

	"github.com/friendflow/friendflow/rules/imevent"
)

// maxKeys is the number of keys one object of the body may have:
// fastDecoder.object spots a repeated key with one bit per key in a uint32.
const maxKeys = 32

// table is imevent.Fields checked and arranged for the generators.
type table struct {
	fields []imevent.Field
	cmds   []string
	// byName is CommandTable by command name.
	byName map[string]imevent.Command
	// top are the fields some command reads from the body's top level.
	top []imevent.Field
	// lists are the body's lists, in the order commands first use them.
	lists []list
}

// list is one of the body's lists: the commands whose events are its
// elements and the fields some of them read from an element.
type list struct {
	name string
	cmds []string
	elem []imevent.Field
	// scalar is the field each element is, when the elements are plain
	// values rather than objects (Command.Scalar).
	scalar string
}

func newTable(fields []imevent.Field, cmds []imevent.Command) (*table, error) {
	if len(fields) == 0 || len(cmds) == 0 {
		return nil, fmt.Errorf("no fields or no commands")
	}
	t := &table{fields: fields, byName: map[string]imevent.Command{}}
	if err := t.addCommands(cmds); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, f := range fields {
		if names[f.Name] {
			return nil, fmt.Errorf("field %s: declared twice", f.Name)
		}
		names[f.Name] = true
		if err := checkField(f); err != nil {
			return nil, err
		}
		if err := t.place(f); err != nil {
			return nil, err
		}
	}
	if err := t.checkScalars(); err != nil {
		return nil, err
	}
	return t, t.checkKeyCounts()
}

// checkScalars: a list of plain values has one field per element, the
// one its commands name, so the element is that field's value.
func (t *table) checkScalars() error {
	for _, l := range t.lists {
		if l.scalar == "" {
			continue
		}
		if len(l.elem) != 1 || l.elem[0].Name != l.scalar {
			var names []string
			for _, f := range l.elem {
				names = append(names, f.Name)
			}
			return fmt.Errorf("%s holds plain values of field %s, but its commands read %v from an element: want exactly [%s]", l.name, l.scalar, names, l.scalar)
		}
	}
	return nil
}

// addCommands checks the command table's rows and groups the commands by
// the body list that holds their events.
func (t *table) addCommands(cmds []imevent.Command) error {
	consts := map[string]bool{}
	for _, cmd := range cmds {
		c := cmd.Name
		switch {
		case c == "" || strings.ContainsAny(c, "\"\\\n"):
			return fmt.Errorf("command %q: the name must be non-empty and need no quoting", c)
		case t.byName[c].Name != "":
			return fmt.Errorf("command %s: declared twice", c)
		case !isName(cmd.Const) || !token.IsExported(cmd.Const) || consts[cmd.Const]:
			return fmt.Errorf("command %s: Const %q must be a new exported ASCII Go identifier", c, cmd.Const)
		case !strings.HasPrefix(cmd.Doc, "https://"):
			return fmt.Errorf("command %s: Doc must be the URL of Tencent's page", c)
		}
		consts[cmd.Const] = true
		t.byName[c] = cmd
		t.cmds = append(t.cmds, c)
		name := cmd.List
		if !isName(name) {
			return fmt.Errorf("command %s: List %q is not an ASCII Go identifier", c, name)
		}
		i := t.list(name)
		if i < 0 {
			t.lists = append(t.lists, list{name: name, scalar: cmd.Scalar})
			i = len(t.lists) - 1
		}
		if t.lists[i].scalar != cmd.Scalar {
			return fmt.Errorf("command %s: Scalar %q, but another command's %s has Scalar %q: a list's elements are one shape", c, cmd.Scalar, name, t.lists[i].scalar)
		}
		t.lists[i].cmds = append(t.lists[i].cmds, c)
	}
	return nil
}

// checkField checks one row on its own: name, types, doc and domain.
func checkField(f imevent.Field) error {
	switch {
	case !isName(f.Name) || !token.IsExported(f.Name):
		return fmt.Errorf("field %q: the name must be an exported ASCII Go identifier", f.Name)
	case f.Type != "string" && f.Type != "int":
		return fmt.Errorf("field %s: Type %q, want string or int", f.Name, f.Type)
	case f.Wire != "" && !(f.Type == "int" && f.Wire == "int64"):
		return fmt.Errorf("field %s: Wire %q for Type %s: only an int may be an int64 on the wire", f.Name, f.Wire, f.Type)
	case f.Doc == "" || strings.ContainsAny(f.Doc, "\n\r") || strings.Contains(f.Doc, "*/"):
		return fmt.Errorf("field %s: Doc must be one line", f.Name)
	case len(f.From) == 0:
		return fmt.Errorf("field %s: no command carries it (From is empty)", f.Name)
	}
	return checkDomain(f)
}

// place adds f to the body's top level and to the element of each list
// some command reads it from, checking each of its sources.
func (t *table) place(f imevent.Field) error {
	top, elem := false, map[string]bool{}
	for c, s := range f.From {
		if !slices.Contains(t.cmds, c) {
			return fmt.Errorf("field %s: From names %q, which is not a command of imevent.CommandTable", f.Name, c)
		}
		switch s {
		case imevent.FromQuery:
			if err := checkQueryField(f); err != nil {
				return err
			}
		case imevent.FromBody:
			top = true
		case imevent.FromElem:
			elem[t.byName[c].List] = true
		case imevent.Derived:
		default:
			return fmt.Errorf("field %s: command %s: unknown Source %d", f.Name, c, s)
		}
	}
	if top {
		t.top = append(t.top, f)
	}
	for i := range t.lists {
		if elem[t.lists[i].name] {
			t.lists[i].elem = append(t.lists[i].elem, f)
		}
	}
	return nil
}

// checkQueryField: a field read from the query is held in
// engine/imcallback's Callback, which knows the query's few parameters by
// name; a new one is a field of Callback first (the generated mapping
// does not compile without it).
func checkQueryField(f imevent.Field) error {
	switch f.CallbackField() {
	case "Command", "SdkAppid", "ClientIP", "OptPlatform":
		return nil
	}
	return fmt.Errorf("field %s comes from the query, but Callback holds only Command, SdkAppid, ClientIP and OptPlatform", f.Name)
}

// checkKeyCounts: decodeFast spots a repeated key with one bit per key of
// an object, and the body's top level must not name a member twice.
func (t *table) checkKeyCounts() error {
	keys := map[string]bool{"CallbackCommand": true}
	for _, k := range t.bodyKeys()[1:] {
		if keys[k] {
			return fmt.Errorf("the body's top level has two members %s (a field read from the body named like a list, or CallbackCommand read from the body)", k)
		}
		keys[k] = true
	}
	if len(keys) > maxKeys {
		return fmt.Errorf("the body's top level has %d keys, more than the %d decodeFast's bit set holds", len(keys), maxKeys)
	}
	for _, l := range t.lists {
		if len(l.elem) > maxKeys {
			return fmt.Errorf("%s elements have %d keys, more than the %d decodeFast's bit set holds", l.name, len(l.elem), maxKeys)
		}
	}
	return nil
}

func (t *table) list(name string) int {
	for i := range t.lists {
		if t.lists[i].name == name {
			return i
		}
	}
	return -1
}

// bodyKeys are the keys of the body's top level, in struct order.
func (t *table) bodyKeys() []string {
	keys := []string{"CallbackCommand"}
	for _, f := range t.top {
		keys = append(keys, f.Name)
	}
	for _, l := range t.lists {
		keys = append(keys, l.name)
	}
	return keys
}

// isName reports whether s is a Go identifier of ASCII letters, digits and
// underscores, which JSON writes without escapes.
func isName(s string) bool {
	if !token.IsIdentifier(s) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// wire is f's Go type in the body.
func wire(f imevent.Field) string {
	if f.Wire != "" {
		return f.Wire
	}
	return f.Type
}

// convert converts x, of f's wire type, to f's Type.
func convert(f imevent.Field, x string) string {
	if wire(f) != f.Type {
		return f.Type + "(" + x + ")"
	}
	return x
}

// short is a command without its Sns.Callback or Follow.CallbackAfter
// prefix, for comments.
func short(cmd string) string {
	if s, ok := strings.CutPrefix(cmd, "Follow.CallbackAfter"); ok {
		return s
	}
	return strings.TrimPrefix(cmd, "Sns.Callback")
}

// origin says in a sentence where Decode reads f, command by command.
func (t *table) origin(f imevent.Field) string {
	type group struct {
		from string
		cmds []string
	}
	var groups []group
	for _, c := range t.cmds {
		s, ok := f.From[c]
		if !ok {
			continue
		}
		var from string
		switch s {
		case imevent.FromQuery:
			from = "from the query"
		case imevent.FromBody:
			from = "from the body"
		case imevent.FromElem:
			from = "from each " + t.byName[c].List + " element"
			if t.byName[c].Scalar != "" {
				from = "from each string of the " + t.byName[c].List + " array"
			}
		case imevent.Derived:
			from = "by Decode"
		}
		i := 0
		for i < len(groups) && groups[i].from != from {
			i++
		}
		if i == len(groups) {
			groups = append(groups, group{from: from})
		}
		groups[i].cmds = append(groups[i].cmds, short(c))
	}
	var parts []string
	for _, g := range groups {
		who := strings.Join(g.cmds, ", ")
		if len(g.cmds) == len(t.cmds) {
			who = "every command"
		}
		parts = append(parts, who+" "+g.from)
	}
	return "Set on " + strings.Join(parts, "; on ") + "."
}

// checkDomain holds f's documented domain to what rules' lint relies on:
// one kind of domain, of the field's type, every equivalent spelling one
// of the values.
func checkDomain(f imevent.Field) error {
	kinds := 0
	for _, set := range []bool{len(f.Values) > 0, len(f.Ints) > 0, f.Prefix != ""} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return fmt.Errorf("field %s: set at most one of Values, Ints and Prefix", f.Name)
	case f.Type != "string" && (len(f.Values) > 0 || f.Prefix != ""):
		return fmt.Errorf("field %s: Values and Prefix are for string fields; use Ints", f.Name)
	case f.Type != "int" && len(f.Ints) > 0:
		return fmt.Errorf("field %s: Ints are for int fields; use Values", f.Name)
	}
	for _, group := range f.Equivalent {
		if len(group) < 2 {
			return fmt.Errorf("field %s: an Equivalent group needs two spellings or more, got %q", f.Name, group)
		}
		for _, v := range group {
			if !slices.Contains(f.Values, v) {
				return fmt.Errorf("field %s: Equivalent spelling %q is not one of Values", f.Name, v)
			}
		}
	}
	return nil
}
