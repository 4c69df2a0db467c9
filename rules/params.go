package rules

import "github.com/friendflow/friendflow/actions"

// pval is a compiled action parameter value: a YAML value whose strings
// may hold ${ } templates.
type pval struct {
	kind   pvalKind
	static any       // pvStatic: a scalar (string, int, float64, bool, nil)
	tmpl   *template // pvTemplate
	keys   []string  // pvMap, in file order
	vals   []*pval   // pvMap: values of keys; pvList: the items
}

type pvalKind uint8

const (
	pvStatic pvalKind = iota
	pvTemplate
	pvMap
	pvList
)

// render returns the value for one event as fresh JSON-compatible data:
// every map and list is new, so a caller may keep or change what it gets.
func (p *pval) render(x *evalCtx) (any, error) {
	switch p.kind {
	case pvTemplate:
		return p.tmpl.render(x)
	case pvMap:
		return p.renderMap(x)
	case pvList:
		out := make([]any, len(p.vals))
		for i, v := range p.vals {
			rv, err := v.render(x)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return p.static, nil
}

func (p *pval) renderMap(x *evalCtx) (map[string]any, error) {
	out := make(map[string]any, len(p.keys))
	for i, k := range p.keys {
		rv, err := p.vals[i].render(x)
		if err != nil {
			if p.vals[i].kind != pvMap && p.vals[i].kind != pvList {
				return nil, &paramRenderError{path: k, err: err}
			}
			if pe, ok := err.(*paramRenderError); ok {
				pe.path = k + "." + pe.path
				return nil, pe
			}
			return nil, &paramRenderError{path: k, err: err}
		}
		out[k] = rv
	}
	return out, nil
}

type paramRenderError struct {
	path string
	err  error
}

func (e *paramRenderError) Error() string { return "parameter " + e.path + ": " + e.err.Error() }
func (e *paramRenderError) Unwrap() error { return e.err }

// eachTemplate calls fn for every template of the value.
func (p *pval) eachTemplate(fn func(*template)) {
	switch p.kind {
	case pvTemplate:
		if p.tmpl != nil {
			fn(p.tmpl)
		}
	case pvMap, pvList:
		for _, v := range p.vals {
			v.eachTemplate(fn)
		}
	}
}

// loadValue is the value Spec.Check sees at load time: templates stand in
// as actions.Deferred because their values are only known per event.
func (p *pval) loadValue() any {
	switch p.kind {
	case pvTemplate:
		return actions.Deferred{}
	case pvMap:
		out := make(map[string]any, len(p.keys))
		for i, k := range p.keys {
			out[k] = p.vals[i].loadValue()
		}
		return out
	case pvList:
		out := make([]any, len(p.vals))
		for i, v := range p.vals {
			out[i] = v.loadValue()
		}
		return out
	}
	return p.static
}
