package rules

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/rules/imevent"
)

// A test case's expected action may give, beside its kind, the delay and
// cancel_on the rendered action must have; left out, they are not
// compared.

// expectedKind returns the kind key and value of an expected action's
// mapping n, and its delay and cancel_on keys; k is nil unless n is a
// mapping with exactly one other key.
func expectedKind(n *yaml.Node) (k, val *yaml.Node, timing []kv) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := resolve(n.Content[i])
		if key.Value == "delay" || key.Value == "cancel_on" {
			timing = append(timing, kv{key, n.Content[i+1]})
			continue
		}
		if k != nil {
			return nil, nil, nil
		}
		k, val = key, n.Content[i+1]
	}
	return k, val, timing
}

// expectedTiming reads an expected action's delay and cancel_on.
func (p *fileParser) expectedTiming(ea *expectedAction, timing []kv, what string) bool {
	ok := true
	for _, t := range timing {
		switch t.key.Value {
		case "delay":
			d, dok := p.duration(t.val, what+": delay")
			ok = ok && dok
			ea.delay = &d
		case "cancel_on":
			cmds, cok := p.expectedCommands(t.val, what+": cancel_on")
			ok = ok && cok
			ea.cancelOn, ea.checkCancel = cmds, true
		}
	}
	return ok
}

// expectedCommands reads a command or a list of them; [] expects none.
func (p *fileParser) expectedCommands(n *yaml.Node, what string) ([]string, bool) {
	n = resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	ok := true
	var out []string
	for _, it := range items {
		cmd, sok := p.scalarString(it, what)
		switch {
		case !sok:
			ok = false
		case !imevent.IsCommand(cmd):
			p.errAt(resolve(it), "%s: unknown command %q%s", what, cmd, suggestion(cmd, imevent.Commands))
			ok = false
		default:
			out = append(out, cmd)
		}
	}
	return out, ok
}

// timingMatches reports whether got has the delay and cancel_on w expects.
func (w *expectedAction) timingMatches(got *Action) bool {
	return (w.delay == nil || *w.delay == got.Delay) && (!w.checkCancel || slices.Equal(w.cancelOn, got.Cancel.commands()))
}

// timingDiff describes the expected delay and cancel_on, and with got,
// how the rendered action's compare.
func (w *expectedAction) timingDiff(b *strings.Builder, got *Action) {
	if w.delay != nil {
		switch {
		case got == nil:
			fmt.Fprintf(b, "\n    delay: %s", w.delay)
		case *w.delay == got.Delay:
			fmt.Fprintf(b, "\n      delay: %s (equal)", got.Delay)
		default:
			fmt.Fprintf(b, "\n      delay: expected %s, got %s", w.delay, got.Delay)
		}
	}
	if w.checkCancel {
		want := "[" + strings.Join(w.cancelOn, ", ") + "]"
		switch {
		case got == nil:
			fmt.Fprintf(b, "\n    cancel_on: %s", want)
		case slices.Equal(w.cancelOn, got.Cancel.commands()):
			fmt.Fprintf(b, "\n      cancel_on: %s (equal)", want)
		default:
			fmt.Fprintf(b, "\n      cancel_on: expected %s, got [%s]", want, strings.Join(got.Cancel.commands(), ", "))
		}
	}
}
