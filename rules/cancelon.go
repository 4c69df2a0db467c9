package rules

import (
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/rules/imevent"
)

// MaxCancelDelay is the longest delay an action with cancel_on may have.
// The queue keeps a pair's cancellation markers for longer than this
// (engine/queue's cancel bucket), so a marker is still there when the
// action falls due; a longer delay would outlive it.
const MaxCancelDelay = 720 * time.Hour

// parseCancelOn reads an action's cancel_on: a command or a list of them,
// each known and carrying a pair (From_Account and To_Account), for an
// action that has a delay (without one it runs at once: there is nothing
// pending to cancel).
func (p *fileParser) parseCancelOn(a *action, kv kv, what string) {
	what += ": cancel_on"
	n := resolve(kv.val)
	var items []*yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		items = []*yaml.Node{n}
	case n.Kind == yaml.SequenceNode && len(n.Content) > 0:
		items = n.Content
	default:
		p.errAt(n, "%s: want a command or a non-empty list of commands, got %s", what, describeNode(n))
		return
	}
	if a.spec.Sync {
		p.errAt(kv.key, "%s: %s is decided while the callback waits; there is nothing to cancel", what, a.spec.Name)
		return
	}
	switch {
	case a.delay <= 0:
		p.errAt(kv.key, "%s: needs a delay: without one the action runs at once and there is nothing pending to cancel", what)
	case a.delay > MaxCancelDelay:
		p.errAt(kv.key, "%s: the delay (%s) is over the %s an action with cancel_on may wait", what, a.delay, shortDuration(MaxCancelDelay))
	}
	for _, it := range items {
		cmd, ok := p.scalarString(it, what)
		if !ok {
			continue
		}
		it = resolve(it)
		switch {
		case !imevent.IsCommand(cmd):
			p.errAt(it, "%s: unknown command %q%s", what, cmd, suggestion(cmd, imevent.Commands))
		case !HasPair(cmd):
			p.errAt(it, "%s: %s carries no From_Account/To_Account pair to match the action's against", what, cmd)
		case slices.Contains(a.cancelOn, cmd):
			p.errAt(it, "%s: command %q is listed twice", what, cmd)
		default:
			a.cancelOn = append(a.cancelOn, cmd)
		}
	}
	if a.cancelOn != nil {
		a.cancel = &Cancel{On: a.cancelOn}
	}
}

// commands returns c's commands; nil for a nil c.
func (c *Cancel) commands() []string {
	if c == nil {
		return nil
	}
	return c.On
}

// HasPair reports whether every event of cmd has a From_Account and a
// To_Account: the pair cancel_on matches on.
func HasPair(cmd string) bool {
	found := 0
	for i := range imevent.Fields {
		f := &imevent.Fields[i]
		if (f.Name == "From_Account" || f.Name == "To_Account") && f.Carries(cmd) {
			found++
		}
	}
	return found == 2
}

// cancelCommands returns, indexed by imevent.CommandIndex, whether some
// rule's action cancels on the command.
func cancelCommands(rules []*rule) []bool {
	var out []bool
	for _, r := range rules {
		for _, a := range r.actions {
			for _, cmd := range a.cancelOn {
				if i, ok := imevent.CommandIndex(cmd); ok {
					if out == nil {
						out = make([]bool, imevent.NumCommands)
					}
					out[i] = true
				}
			}
		}
	}
	return out
}

// CancelsOn reports whether an action of an enabled or disabled rule of
// the set has cmd in its cancel_on: an event of cmd must then be noted for
// its pair (engine/queue's MarkCancel), so that the pair's pending actions
// are dropped. It costs an index lookup, nothing more, for a command no
// rule cancels on.
func (s *Set) CancelsOn(cmd string) bool {
	if s.cancelOn == nil {
		return false
	}
	i, ok := imevent.CommandIndex(cmd)
	return ok && s.cancelOn[i]
}
