package rules

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// parseTest reads one item of a rule's tests:. It returns nil when the
// item has a problem (reported); the rest of the item is still checked.
func (p *fileParser) parseTest(item *yaml.Node, r *rule, what string) *testCase {
	n := resolve(item)
	what = testWhat(n, what)
	fields, ok := p.mapping(n, what, testKeys)
	if !ok {
		return nil
	}
	tc := &testCase{line: n.Line, col: n.Column}
	good := p.testNameAndMatch(tc, n, fields, what)
	ev, ok := p.testEvent(fields, r, what)
	good = good && ok
	tc.event = ev
	if kv, ok := fields["events"]; ok {
		good = p.testEvents(tc, fields, kv.val, r, what) && good
	}
	if kv, ok := fields["actions"]; ok {
		ok, usable := p.testActions(tc, kv.val, what)
		if !usable {
			return nil
		}
		good = good && ok
	}
	if kv, ok := fields["decision"]; ok {
		good = p.testDecision(tc, kv.val, what) && good
	}
	if kv, ok := fields["lists"]; ok {
		var lok bool
		tc.lists, lok = p.parseTestLists(kv.val, what)
		good = good && lok
	}
	if kv, ok := fields["profiles"]; ok {
		good = p.testProfiles(tc, kv.val, what) && good
	}
	if !good {
		return nil
	}
	return tc
}

// testWhat names the test in what, by its name: when it has one, so that
// every problem of the test says which test it is.
func testWhat(n *yaml.Node, what string) string {
	if n.Kind != yaml.MappingNode {
		return what
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if resolve(n.Content[i]).Value == "name" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && v.Value != "" {
				what = fmt.Sprintf("%s %q", what, v.Value)
			}
		}
	}
	return what
}

// testNameAndMatch reads the test's two required keys, name and match.
func (p *fileParser) testNameAndMatch(tc *testCase, n *yaml.Node, fields map[string]kv, what string) bool {
	good := true
	if kv, ok := fields["name"]; ok {
		tc.name, _ = p.scalarString(kv.val, what+": name")
	} else {
		p.errAt(n, "%s: missing required key name", what)
		good = false
	}
	if kv, ok := fields["match"]; ok {
		v := resolve(kv.val)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&tc.match) != nil {
			p.errAt(v, "%s: match: want true or false, got %s", what, describeNode(v))
			good = false
		}
	} else if _, ok := fields["decision"]; ok {
		tc.noMatch = true // the decision is what the case checks
	} else {
		p.errAt(n, "%s: missing required key match (or decision)", what)
		good = false
	}
	return good
}

// testActions reads the actions a test expects. ok is false when one has
// a problem; usable is false when actions is not a list at all.
func (p *fileParser) testActions(tc *testCase, val *yaml.Node, what string) (ok, usable bool) {
	list := resolve(val)
	if list.Kind != yaml.SequenceNode {
		p.errAt(list, "%s: actions: want a list, got %s", what, describeNode(list))
		return false, false
	}
	ok = true
	for i, it := range list.Content {
		ea, eok := p.expectedAction(it, fmt.Sprintf("%s: action %d", what, i+1))
		if !eok {
			ok = false
			continue
		}
		tc.actions = append(tc.actions, ea)
	}
	return ok, true
}

// testDecision reads the decision a test expects, which only a
// before-callback's event has.
func (p *fileParser) testDecision(tc *testCase, val *yaml.Node, what string) bool {
	d, ok := p.expectedDecision(val, what+": decision")
	if ok && !imevent.IsPrev(tc.event.CallbackCommand) {
		p.errAt(val, "%s: decision: only before-callbacks (Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse) are decided; this test's event is %s", what, tc.event.CallbackCommand)
		ok = false
	}
	tc.decision = d
	return ok
}

// expectedDecision reads a test's decision: allow, deny, or a mapping
// {deny: CODE, reason: TEXT} (both optional: a deny with any code/reason).
func (p *fileParser) expectedDecision(n *yaml.Node, what string) (*expectedDecision, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode {
		switch v.Value {
		case "allow":
			return &expectedDecision{}, true
		case "deny":
			return &expectedDecision{deny: true}, true
		}
		p.errAt(v, "%s: want allow, deny or {deny: CODE, reason: TEXT}, got %q", what, v.Value)
		return nil, false
	}
	fields, ok := p.mapping(v, what, decisionKeys)
	if !ok {
		return nil, false
	}
	d := &expectedDecision{deny: true}
	if kv, has := fields["deny"]; has {
		c := resolve(kv.val)
		if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!int" || c.Decode(&d.code) != nil {
			p.errAt(c, "%s: deny: want a result code (38000-39000), got %s", what, describeNode(c))
			return nil, false
		}
	}
	if kv, has := fields["reason"]; has {
		r, ok := p.scalarString(kv.val, what+": reason")
		if !ok {
			return nil, false
		}
		d.reason = &r
	}
	return d, true
}

// testEvent builds a test case's event from its partial mapping of event
// fields, checked against the event's own field names and types.
func (p *fileParser) testEvent(fields map[string]kv, r *rule, what string) (imevent.Event, bool) {
	var ev imevent.Event
	vals := make(map[string]any)
	ok := true
	if kv, has := fields["event"]; has {
		en := resolve(kv.val)
		if !isNull(en) {
			ef, mok := p.mapping(en, what+": event", nil)
			if !mok {
				return ev, false
			}
			for name, f := range ef {
				proto, known := p.l.proto[name]
				if !known {
					p.errAt(f.key, "%s: event: unknown field %q%s", what, name, suggestion(name, sortedKeys(p.l.proto)))
					ok = false
					continue
				}
				v := resolve(f.val)
				switch proto.(type) {
				case string:
					if v.Kind != yaml.ScalarNode || isNull(v) {
						p.errAt(v, "%s: event: %s: want a string, got %s", what, name, describeNode(v))
						ok = false
						continue
					}
					vals[name] = v.Value
				case int:
					var i int
					if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&i) != nil {
						p.errAt(v, "%s: event: %s: want an integer, got %s", what, name, describeNode(v))
						ok = false
						continue
					}
					vals[name] = i
				}
			}
		}
	}
	if cmd, has := vals["CallbackCommand"].(string); has {
		if !imevent.IsCommand(cmd) {
			p.errAt(resolve(fields["event"].val), "%s: event: unknown command %q%s", what, cmd, suggestion(cmd, imevent.Commands))
			ok = false
		}
	} else if len(r.on) > 0 {
		vals["CallbackCommand"] = r.on[0]
	}
	data, err := json.Marshal(vals)
	if err == nil {
		err = json.Unmarshal(data, &ev)
	}
	if err != nil { // the checks above make this unreachable
		p.errAt(resolve(fields["event"].val), "%s: event: %v", what, err)
		ok = false
	}
	return ev, ok
}

func (p *fileParser) expectedAction(item *yaml.Node, what string) (expectedAction, bool) {
	n := resolve(item)
	k, val, timing := expectedKind(n)
	if k == nil {
		p.errAt(n, "%s: want a mapping with one action kind and its expected parameters, like `- log: {message: hi}`, and optionally its delay and cancel_on", what)
		return expectedAction{}, false
	}
	kind, ok := p.l.reg.Lookup(k.Value)
	if !ok {
		p.errAt(k, "%s: unknown action kind %q%s", what, k.Value, suggestion(k.Value, p.l.reg.Names()))
		return expectedAction{}, false
	}
	ea := expectedAction{kind: k.Value, spec: kind.Spec(), params: map[string]any{}}
	if !p.expectedTiming(&ea, timing, what) {
		return ea, false
	}
	pn := resolve(val)
	if isNull(pn) {
		return ea, true
	}
	if pn.Kind != yaml.MappingNode {
		p.errAt(pn, "%s: parameters: want a mapping, got %s", what, describeNode(pn))
		return ea, false
	}
	known := make([]string, len(ea.spec.Params))
	for i, prm := range ea.spec.Params {
		known[i] = prm.Name
	}
	fields, ok := p.mapping(pn, what, known)
	if !ok {
		return ea, false
	}
	for i := 0; i+1 < len(pn.Content); i += 2 {
		name := resolve(pn.Content[i]).Value
		if fields[name].key != resolve(pn.Content[i]) {
			ok = false // reported by mapping
			continue
		}
		v, vok := p.staticValue(pn.Content[i+1], what)
		if !vok {
			ok = false
			continue
		}
		ea.keys = append(ea.keys, name)
		ea.params[name] = v
	}
	return ea, ok
}

// staticValue converts a YAML value without templates (the expected
// parameters of a test case) to JSON-compatible data.
func (p *fileParser) staticValue(n *yaml.Node, what string) (any, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		fields, ok := p.mapping(n, what, nil)
		if !ok {
			return nil, false
		}
		out := make(map[string]any, len(fields))
		for k, kv := range fields {
			v, vok := p.staticValue(kv.val, what)
			ok = ok && vok
			out[k] = v
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for _, it := range n.Content {
			v, vok := p.staticValue(it, what)
			ok = ok && vok
			out = append(out, v)
		}
		return out, ok
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return n.Value, true
		}
		v, err := scalarValue(n)
		if err != nil {
			p.errAt(n, "%s: %v", what, err)
			return nil, false
		}
		return v, true
	}
	p.errAt(n, "%s: unsupported YAML value", what)
	return nil, false
}

// testProfiles reads a test's profiles: account → profile fields.
func (p *fileParser) testProfiles(tc *testCase, n *yaml.Node, what string) bool {
	what += ": profiles"
	accounts, ok := p.mapping(n, what, nil)
	if !ok {
		return false
	}
	tc.profiles = make(map[string]actions.Profile, len(accounts))
	for account, f := range accounts {
		fields, ok := p.mapping(f.val, what+": "+account, actions.ProfileFields)
		if !ok {
			return false
		}
		var prof actions.Profile
		for name, fv := range fields {
			if !p.profileField(&prof, name, resolve(fv.val), what+": "+account+": "+name) {
				return false
			}
		}
		tc.profiles[account] = prof
	}
	return true
}

func (p *fileParser) profileField(prof *actions.Profile, name string, v *yaml.Node, what string) bool {
	if name == "Custom" {
		custom, ok := p.mapping(v, what, nil)
		if !ok {
			return false
		}
		prof.Custom = make(map[string]string, len(custom))
		for k, cv := range custom {
			if !validCustomKey(k) {
				p.errAt(cv.key, "%s: %q: a custom field's key is 1 to %d English letters", what, k, maxCustomKey)
				return false
			}
			s, ok := p.scalarString(cv.val, what+": "+k)
			if !ok {
				return false
			}
			prof.Custom[k] = s
		}
		return true
	}
	if name == "Language" {
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&prof.Language) != nil {
			p.errAt(v, "%s: want an integer, got %s", what, describeNode(v))
			return false
		}
		return true
	}
	s, ok := p.scalarString(v, what)
	if !ok {
		return false
	}
	switch name {
	case "Nick":
		prof.Nick = s
	case "FaceUrl":
		prof.FaceUrl = s
	case "Gender":
		prof.Gender = s
	case "Location":
		prof.Location = s
	case "SelfSignature":
		prof.SelfSignature = s
	}
	return true
}
