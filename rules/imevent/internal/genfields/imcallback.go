package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/friendflow/friendflow/rules/imevent"
)

// imcallback writes package imcallback's body_gen.go: the wire body, its
// mapping to events and decodeFast.
func (t *table) imcallback(g *gen) {
	g.WriteString(header)
	g.p("package imcallback")
	g.p("import (")
	if t.wireInt() {
		g.p(`"strconv"`)
	}
	g.p(`"github.com/friendflow/friendflow/rules/imevent"`)
	g.p(")")
	t.body(g)
	t.mapping(g)
	t.decodeFast(g)
}

// wireInt: decodeFast reads an int of the platform's size with strconv.
func (t *table) wireInt() bool {
	return slices.ContainsFunc(t.fields, func(f imevent.Field) bool {
		return wire(f) == "int" && slices.ContainsFunc(t.cmds, func(c string) bool {
			return f.From[c] == imevent.FromBody || f.From[c] == imevent.FromElem
		})
	})
}

// body writes the wire body: the top level's fields and each list's
// element.
func (t *table) body(g *gen) {
	g.p(`
// body holds every field of the callbacks' bodies; which ones are set
// depends on the command. Unknown fields are ignored so that newer
// versions of a callback keep working. The element types stay anonymous:
// json.Unmarshal's error messages name them.
type body struct {
	CallbackCommand string ` + "`json:\"CallbackCommand\"`")
	for _, f := range t.top {
		g.p("%s %s `json:%q`", f.Name, wire(f), f.Name)
	}
	for _, l := range t.lists {
		if l.scalar != "" {
			g.p("%s []%s `json:%q`", l.name, wire(l.elem[0]), l.name)
			continue
		}
		g.p("%s []struct {", l.name)
		for _, f := range l.elem {
			g.p("%s %s `json:%q`", f.Name, wire(f), f.Name)
		}
		g.p("} `json:%q`", l.name)
	}
	g.p("}")
}

// mapping writes the body-to-event functions events calls.
func (t *table) mapping(g *gen) {
	g.p(`
// listLen returns the number of elements of cmd's list, or false for a
// command it does not know.
func (b *body) listLen(cmd string) (int, bool) {
	switch cmd {`)
	for _, l := range t.lists {
		g.cases(l.cmds, func(string) string { return fmt.Sprintf("return len(b.%s), true\n", l.name) })
	}
	g.p(`}
	return 0, false
}

// shared sets the fields all of cb's events share: the query's and the
// body's top level.
func (b *body) shared(cb *Callback, e *imevent.Event) {
	switch cb.Command {`)
	g.cases(t.cmds, func(c string) string {
		var s strings.Builder
		for _, f := range t.fields {
			switch f.From[c] {
			case imevent.FromQuery:
				fmt.Fprintf(&s, "e.%s = cb.%s\n", f.Name, f.CallbackField())
			case imevent.FromBody:
				fmt.Fprintf(&s, "e.%s = %s\n", f.Name, convert(f, "b."+f.Name))
			}
		}
		return s.String()
	})
	g.p(`}
}

// elements sets each of events to base with the fields of the element of
// cmd's list at its index; events is as long as the list. Each event is
// built in a local and stored once: stores into the slice, on the heap,
// would each check for the write barrier.
func (b *body) elements(cmd string, base *imevent.Event, events []imevent.Event) {
	switch cmd {`)
	g.cases(t.cmds, func(c string) string {
		var s strings.Builder
		fmt.Fprintf(&s, "for i := range events {\ne := *base\n")
		var from strings.Builder
		for _, f := range t.fields {
			if f.From[c] == imevent.FromElem {
				fmt.Fprintf(&from, "e.%s = %s\n", f.Name, convert(f, "el."+f.Name))
			}
		}
		switch {
		case t.byName[c].Scalar != "":
			f := t.fields[slices.IndexFunc(t.fields, func(f imevent.Field) bool { return f.Name == t.byName[c].Scalar })]
			fmt.Fprintf(&s, "e.%s = %s\n", f.Name, convert(f, "b."+t.byName[c].List+"[i]"))
		case from.Len() > 0:
			fmt.Fprintf(&s, "el := &b.%s[i]\n%s", t.byName[c].List, from.String())
		}
		s.WriteString("events[i] = e\n}\n")
		return s.String()
	})
	g.p(`}
}`)
}

// readValue writes the decodeFast statements that read the value of f into
// dst, setting ok.
func readValue(g *gen, f imevent.Field, dst string) {
	switch wire(f) {
	case "string":
		g.p("%s, ok = d.str()", dst)
	case "int64":
		g.p("%s, ok = d.int(64)", dst)
	case "int":
		g.p("var v int64")
		g.p("v, ok = d.int(strconv.IntSize)")
		g.p("%s = int(v)", dst)
	}
}

// decodeFast writes decodeFast, the body's fast scanner.
func (t *table) decodeFast(g *gen) {
	g.p(`
// decodeFast fills b from the shape of body Tencent actually sends and
// reports whether it could. It is a shortcut past json.Unmarshal, which
// spends most of its time on reflection and on one allocation per string:
// here every value is a substring of one copy of the body.
//
// It accepts only input whose meaning under json.Unmarshal is obvious: one
// object of keys byte-equal to body's json tags, each at most once, holding
// strings without escapes and integers that fit. Anything else (escapes,
// keys that match only case-insensitively, unknown keys, null, floats,
// duplicates, trailing data, …) returns false and leaves the verdict,
// including its error message, to json.Unmarshal. b may then be partly
// filled; the caller must start again from a zero body.
//
// Each key's case returns the key's bit, with which object refuses a key
// seen twice. The scanner's helpers are in fastdecode.go.
func (b *body) decodeFast(data []byte) bool {
	// One copy: the caller's buffer is reused after Decode returns. The
	// events keep this whole string alive, which costs little because the
	// accepted shape is nearly all values.
	d := fastDecoder{s: string(data)}
	ok := d.object(func(key string) (bit uint32, ok bool) {
		switch key {
		case "CallbackCommand":
			b.CallbackCommand, ok = d.str()
			return 1 << 0, ok`)
	bit := 1
	for _, f := range t.top {
		g.p("case %q:", f.Name)
		readValue(g, f, "b."+f.Name)
		g.p("return 1 << %d, ok", bit)
		bit++
	}
	for _, l := range t.lists {
		g.p("case %q:", l.name)
		g.p("start(&b.%s)", l.name)
		g.p("return 1 << %d, d.array(func() bool {", bit)
		if l.scalar != "" {
			// A plain value: the element is the field's value, read
			// as an object member's would be.
			g.p("el := grow(&b.%s)", l.name)
			g.p("var ok bool")
			readValue(g, l.elem[0], "*el")
			g.p("return ok")
			g.p("})")
			bit++
			continue
		}
		g.p("el := grow(&b.%s)", l.name)
		g.p("return d.object(func(key string) (bit uint32, ok bool) {")
		g.p("switch key {")
		for i, f := range l.elem {
			g.p("case %q:", f.Name)
			readValue(g, f, "el."+f.Name)
			g.p("return 1 << %d, ok", i)
		}
		g.p("}")
		g.p("return 0, false")
		g.p("})")
		g.p("})")
		bit++
	}
	g.p(`}
		return 0, false
	})
	d.space()
	return ok && d.i == len(d.s)
}`)
}
