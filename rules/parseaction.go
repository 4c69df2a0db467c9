package rules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// parseAction compiles one item of a rule's actions:. It returns nil when
// the item has a problem (reported); the rest of the item is still checked.
func (p *fileParser) parseAction(item *yaml.Node, r *rule, what string) *action {
	n := resolve(item)
	if n.Kind != yaml.MappingNode {
		p.errAt(n, "%s: want a mapping with one action kind, like `- log: {message: hi}`, got %s", what, describeNode(n))
		return nil
	}
	fields, _ := p.mapping(n, what, nil)
	kindKey := p.actionKind(n, fields, what)
	if kindKey == nil {
		return nil
	}
	kind, ok := p.l.reg.Lookup(kindKey.Value)
	if !ok {
		p.errAt(kindKey, "%s: unknown action kind %q%s", what, kindKey.Value, suggestion(kindKey.Value, p.l.reg.Names()))
		return nil
	}
	spec := kind.Spec()
	what = fmt.Sprintf("%s (%s)", what, spec.Name)
	if spec.Sync {
		p.checkSyncOn(spec, r, kindKey, what)
	}
	p.lintCallbackLoop(spec, r, kindKey, what)
	a := &action{kind: spec.Name, spec: spec, retry: actions.DefaultRetry}
	paramsOK, usable := p.actionParams(a, fields[kindKey.Value].val, kindKey, what)
	if !usable {
		return nil
	}
	p.actionTiming(a, fields, what)
	if !paramsOK {
		return nil
	}
	a.params.eachTemplate(func(t *template) {
		a.profile = a.profile || t.profile
		for _, k := range t.custom {
			if !slices.Contains(a.custom, k) {
				a.custom = append(a.custom, k)
			}
		}
	})
	if a.profile && a.spec.Sync {
		p.errAt(kindKey, "%s: profile() is resolved when a job runs; %s is decided while the callback waits", what, a.spec.Name)
		return nil
	}
	return a
}

// actionKind returns the key of the item's one action kind: the key that
// is none of the common keys. It reports a missing kind or a second one.
func (p *fileParser) actionKind(n *yaml.Node, fields map[string]kv, what string) *yaml.Node {
	var kindKey *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if slices.Contains(actionKeys, k.Value) || fields[k.Value].key != k {
			continue // common keys, and keys mapping already reported
		}
		if kindKey != nil {
			p.errAt(k, "%s: two action kinds in one item (%s and %s); give each action its own list item", what, kindKey.Value, k.Value)
			continue
		}
		kindKey = k
	}
	if kindKey == nil {
		p.errAt(n, "%s: no action kind (known: %s)", what, strings.Join(p.l.reg.Names(), ", "))
	}
	return kindKey
}

// checkSyncOn reports every command of the rule's on that is not a
// before-callback: only a before-callback's reply decides anything, so a
// synchronous kind means nothing elsewhere.
func (p *fileParser) checkSyncOn(spec actions.Spec, r *rule, kindKey *yaml.Node, what string) {
	for _, cmd := range r.on {
		if !imevent.IsPrev(cmd) {
			p.errAt(kindKey, "%s: %s cannot be used on %s (only on %s)", what, spec.Name, cmd, strings.Join(prevCommands(), ", "))
		}
	}
}

// actionParams compiles the parameters under the kind's key into a.params
// and checks them against the kind's Spec. ok is false when a parameter
// has a problem; usable is false when they are not a mapping at all, so
// nothing else of the item can be checked against them.
func (p *fileParser) actionParams(a *action, val, kindKey *yaml.Node, what string) (ok, usable bool) {
	pn := resolve(val)
	ok = true
	switch {
	case isNull(pn):
		a.params = &pval{kind: pvMap}
	case pn.Kind != yaml.MappingNode:
		p.errAt(pn, "%s: parameters: want a mapping, got %s", what, describeNode(pn))
		return false, false
	default:
		// Even with a broken template, the Spec still checks the rest.
		a.params, ok = p.value(pn, what)
		escapeURLParams(a.spec.Params, a.params)
	}
	if _, err := a.spec.Check(a.params.loadValue().(map[string]any)); err != nil {
		p.errAt(paramErrorAt(err, pn, kindKey), "%s: %s", what, err)
	}
	return ok, true
}

// paramErrorAt is the node a Spec.Check error is reported at: the
// parameter it names (its key when the parameter is unknown), the deepest
// key found on the way to it, or else the kind's key.
func paramErrorAt(err error, pn, kindKey *yaml.Node) *yaml.Node {
	var pe *actions.ParamError
	if !errors.As(err, &pe) || pe.Path == "" {
		return kindKey
	}
	key, val, found := findParam(pn, pe.Path)
	switch {
	case found && strings.HasPrefix(pe.Msg, "unknown parameter"):
		return key
	case found:
		return val
	case key != nil:
		return key
	}
	return kindKey
}

// actionTiming reads the item's delay, retry and cancel_on, which a
// synchronous kind, decided while the callback waits, does not take.
func (p *fileParser) actionTiming(a *action, fields map[string]kv, what string) {
	if kv, ok := fields["delay"]; ok {
		if a.spec.Sync {
			p.errAt(kv.key, "%s: %s is decided while the callback waits; it takes no delay", what, a.spec.Name)
		}
		d, ok := p.duration(kv.val, what+": delay")
		if ok && d < 0 {
			p.errAt(resolve(kv.val), "%s: delay must not be negative", what)
		}
		a.delay = d
	}
	if kv, ok := fields["retry"]; ok {
		if a.spec.Sync {
			p.errAt(kv.key, "%s: %s is decided while the callback waits; it takes no retry", what, a.spec.Name)
		}
		p.parseRetry(kv.val, &a.retry, what+": retry")
	}
	if kv, ok := fields["cancel_on"]; ok {
		p.parseCancelOn(a, kv, what)
	}
}

func (p *fileParser) parseRetry(n *yaml.Node, r *Retry, what string) {
	fields, ok := p.mapping(n, what, retryKeys)
	if !ok {
		return
	}
	if kv, ok := fields["attempts"]; ok {
		v := resolve(kv.val)
		var a int
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&a) != nil {
			p.errAt(v, "%s: attempts: want an integer, got %s", what, describeNode(v))
		} else if a < 1 {
			p.errAt(v, "%s: attempts must be at least 1", what)
		} else {
			r.Attempts = a
		}
	}
	if kv, ok := fields["backoff"]; ok {
		if d, ok := p.duration(kv.val, what+": backoff"); ok {
			if d <= 0 {
				p.errAt(resolve(kv.val), "%s: backoff must be positive", what)
			}
			r.Backoff = d
		}
	}
	if kv, ok := fields["max_backoff"]; ok {
		if d, ok := p.duration(kv.val, what+": max_backoff"); ok {
			r.MaxBackoff = d
		}
	}
	if r.MaxBackoff < r.Backoff {
		at := resolve(n)
		if kv, ok := fields["max_backoff"]; ok {
			at = resolve(kv.val)
		}
		p.errAt(at, "%s: max_backoff (%s) is shorter than backoff (%s)", what, r.MaxBackoff, r.Backoff)
	}
}

// value converts a parameter's YAML value, compiling its templates. It
// returns a value even when not ok (a failed template stands in as a
// template), so that the kind's Spec can still check the rest.
func (p *fileParser) value(n *yaml.Node, what string) (*pval, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		pv := &pval{kind: pvMap}
		ok := true
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				p.errAt(k, "%s: a key must be a name, got %s", what, describeNode(k))
				ok = false
				continue
			}
			if seen[k.Value] {
				p.errAt(k, "%s: duplicate key %q", what, k.Value)
				ok = false
				continue
			}
			seen[k.Value] = true
			v, vok := p.value(n.Content[i+1], what)
			ok = ok && vok
			pv.keys = append(pv.keys, k.Value)
			pv.vals = append(pv.vals, v)
		}
		return pv, ok
	case yaml.SequenceNode:
		pv := &pval{kind: pvList, vals: make([]*pval, 0, len(n.Content))}
		ok := true
		for _, it := range n.Content {
			v, vok := p.value(it, what)
			ok = ok && vok
			pv.vals = append(pv.vals, v)
		}
		return pv, ok
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			if r, seen := p.templates[n]; seen {
				return r.pv, r.ok
			}
			pv, ok := p.templateValue(n, what)
			if p.templates == nil {
				p.templates = make(map[*yaml.Node]tmplResult)
			}
			p.templates[n] = tmplResult{pv, ok}
			return pv, ok
		}
		v, err := scalarValue(n)
		if err != nil {
			p.errAt(n, "%s: %v", what, err)
			return &pval{kind: pvStatic}, false
		}
		return &pval{kind: pvStatic, static: v}, true
	}
	p.errAt(n, "%s: unsupported YAML value", what)
	return &pval{kind: pvStatic}, false
}

func (p *fileParser) templateValue(n *yaml.Node, what string) (*pval, bool) {
	s := n.Value
	spans, tail, err := scanTemplate(s)
	if err != nil {
		p.errAt(n, "%s: %v", what, err)
		return &pval{kind: pvTemplate}, false
	}
	if spans == nil {
		return &pval{kind: pvStatic, static: tail}, true
	}
	t := newTemplate(s, spans, tail)
	ok, lists, counted := true, false, false
	for _, sp := range spans {
		if err := t.addPart(p.l.compiler, sp, s); err != nil {
			line, col := p.exprPos(n, sp.start, err)
			p.problem(line, col, "%s: ${ %s }: %s", what, strings.TrimSpace(s[sp.start:sp.end]), exprMessage(err))
			ok = false
			continue
		}
		counted = counted || p.l.compiler.counted
		if p.noteLists(n, sp.start, s[sp.start:sp.end], what) {
			lists = true
			t.parts[len(t.parts)-1].fast = fexpr{} // the VM, which reports a list's error
		}
	}
	if lists && t.profile {
		// The worker renders a profile() template without the rule set
		// whose lists it would read.
		p.errAt(n, "%s: a template that calls profile() cannot read list(): put them in different parameters", what)
		ok = false
	}
	if counted && t.profile {
		// Nor its counters: the worker has no event's counts.
		p.errAt(n, "%s: a template that calls profile() cannot read count(): put them in different parameters", what)
		ok = false
	}
	t.finish(tail)
	return &pval{kind: pvTemplate, tmpl: t}, ok
}

// scalarValue converts a non-string YAML scalar to int, float64, bool or
// nil.
func scalarValue(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case int64:
		return int(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), nil
		}
		return int(x), nil
	case int, float64, bool, nil, string:
		return v, nil
	}
	return fmt.Sprint(v), nil
}

// findParam follows a ParamError path ("custom.data") through the params
// mapping. found reports whether the whole path exists; otherwise key is the
// deepest key found, if any.
func findParam(params *yaml.Node, path string) (key, val *yaml.Node, found bool) {
	n := resolve(params)
	rest := path
	for rest != "" && n.Kind == yaml.MappingNode {
		next := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i]).Value
			if rest == k || strings.HasPrefix(rest, k+".") {
				key, val = resolve(n.Content[i]), resolve(n.Content[i+1])
				rest = strings.TrimPrefix(strings.TrimPrefix(rest, k), ".")
				n = val
				next = true
				break
			}
		}
		if !next {
			break
		}
	}
	return key, val, rest == "" && key != nil
}

// prevCommands are the before-callbacks, for messages.
func prevCommands() []string {
	var cmds []string
	for _, c := range imevent.Commands {
		if imevent.IsPrev(c) {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// newTemplate starts the template of s, whose ${ } are spans.
func newTemplate(s string, spans []tmplSpan, tail string) *template {
	return &template{src: s, single: len(spans) == 1 && spans[0].lit == "" && tail == "" && spans[0].start == 2 && spans[0].end == len(s)-1}
}

// addPart compiles the span sp of s into t, after its literal text.
func (t *template) addPart(c *exprCompiler, sp tmplSpan, s string) error {
	if sp.lit != "" {
		t.parts = append(t.parts, tmplPart{lit: sp.lit})
	}
	src := s[sp.start:sp.end]
	var (
		fast    fexpr // kind 0: the VM
		raw     bool
		profile bool
		custom  []string
		reads   templateReads
	)
	prog, err := c.compile(src, templateKey, func(n ast.Node) {
		fast, _ = fastCompile(n)
		raw = isRawCall(n)
		if profile, custom = profileInfo(n); profile {
			fast = fexpr{}
		}
		ast.Walk(&n, &reads)
	})
	if err != nil {
		return err
	}
	t.parts = append(t.parts, tmplPart{src: strings.TrimSpace(src), prog: prog, fast: fast, raw: raw, profile: profile})
	t.profile = t.profile || profile
	t.acctsVM = t.acctsVM || reads.vm
	t.accts = append(t.accts, reads.args...)
	for _, f := range reads.fields {
		if !slices.ContainsFunc(t.fields, func(nf namedField) bool { return nf.name == f.name }) {
			t.fields = append(t.fields, f)
		}
	}
	for _, k := range custom {
		if !slices.Contains(t.custom, k) {
			t.custom = append(t.custom, k)
		}
	}
	return nil
}

// finish adds the text after the last ${ } and sizes the rendering.
func (t *template) finish(tail string) {
	if tail != "" {
		t.parts = append(t.parts, tmplPart{lit: tail})
	}
	for _, part := range t.parts {
		t.size += len(part.lit)
		if part.prog != nil {
			t.size += 16 // an account name, a number
		}
	}
}
