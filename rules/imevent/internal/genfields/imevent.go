package main

import (
	"slices"
	"strings"

	"github.com/friendflow/friendflow/rules/imevent"
)

// imevent writes package imevent's imevent_gen.go: the command constants
// and functions, the Event struct and AppendEventJSON.
func (t *table) imevent(g *gen) {
	g.qual = ""
	g.WriteString(header)
	g.p("package imevent")
	if t.usesStrconv() {
		g.p(`import "strconv"`)
	}
	t.commands(g)
	t.event(g)
	t.appendEventJSON(g)
}

// usesStrconv: AppendEventJSON formats int fields with strconv.
func (t *table) usesStrconv() bool {
	return slices.ContainsFunc(t.fields, func(f imevent.Field) bool { return f.Type == "int" })
}

// commands writes what is derived from the command table.
func (t *table) commands(g *gen) {
	g.p("")
	g.p("// The commands of CommandTable (commands.go), from which this file is generated.")
	g.p("const (")
	for _, c := range t.cmds {
		g.p("%s = %q", g.consts[c], c)
	}
	g.p(")")
	g.p(`
// NumCommands is the number of commands: CommandIndex is below it.
const NumCommands = %d

// Commands lists the commands in CommandTable's order (docs, validation).
var Commands = []string{`, len(t.cmds))
	for _, c := range t.cmds {
		g.p("%s,", g.consts[c])
	}
	g.p(`}

// Lists names, per command, the body's array that holds its events, one
// event per element.
var Lists = map[string]string{`)
	for _, c := range t.cmds {
		g.p("%s: %q,", g.consts[c], t.byName[c].List)
	}
	g.p(`}

// CommandIndex numbers the commands densely in CommandTable's order, for
// arrays indexed by command (per-command counts); false for any other.
func CommandIndex(cmd string) (int, bool) {
	switch cmd {`)
	for i, c := range t.cmds {
		g.p("case %s:", g.consts[c])
		g.p("return %d, true", i)
	}
	g.p(`}
	return 0, false
}

// IsCommand reports whether cmd is one of the commands.
func IsCommand(cmd string) bool {
	_, ok := CommandIndex(cmd)
	return ok
}

// IsPrev reports whether cmd is a before-callback whose reply decides
// allow/deny per target.
func IsPrev(cmd string) bool {`)
	var prev []string
	for _, c := range t.cmds {
		if t.byName[c].Prev {
			prev = append(prev, g.consts[c])
		}
	}
	if len(prev) == 0 {
		g.p("return false\n}")
		return
	}
	g.p("switch cmd {")
	g.p("case %s:", strings.Join(prev, ", "))
	g.p("return true")
	g.p("}")
	g.p("return false\n}")
}

// listNames are the body's list names, for a comment.
func (t *table) listNames() string {
	var names []string
	for _, l := range t.lists {
		names = append(names, l.name)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// event writes the Event struct, a field per row.
func (t *table) event(g *gen) {
	g.p("")
	g.comment("Event is one friend relationship change: one element of a callback's " + t.listNames() +
		" together with the callback's shared fields. Field names are Tencent's own, because operators" +
		" write rule conditions against them. Fields a callback does not carry are zero. The fields are" +
		" declared in Fields (fields.go), from which this struct is generated.")
	g.p("type Event struct {")
	for _, f := range t.fields {
		g.comment(f.Doc)
		g.comment(t.origin(f))
		g.p("%s %s `json:%q`", f.Name, f.Type, f.Name)
	}
	g.p("}")
}

// appendEventJSON writes AppendEventJSON, a field per row in order.
func (t *table) appendEventJSON(g *gen) {
	g.p(`
// AppendEventJSON appends the event as encoding/json would marshal it,
// byte for byte (TestAppendEventJSONIsMarshal holds it to that). Every
// queued job carries its event, and reflection-based marshalling of the
// %d fields was a measurable share of a callback's CPU.
func AppendEventJSON(b []byte, e *Event) []byte {`, len(t.fields))
	sep := "{"
	for _, f := range t.fields {
		g.p("b = append(b, `%s%q:`...)", sep, f.Name)
		sep = ","
		switch f.Type {
		case "string":
			g.p("b = appendJSONString(b, e.%s)", f.Name)
		case "int":
			g.p("b = strconv.AppendInt(b, int64(e.%s), 10)", f.Name)
		}
	}
	g.p(`return append(b, '}')
}`)
}
