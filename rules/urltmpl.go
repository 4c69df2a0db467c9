package rules

import (
	"net/url"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"

	"github.com/friendflow/friendflow/actions"
)

// urlEsc says how a template part's value is escaped in a URL parameter.
type urlEsc uint8

const (
	escNone  urlEsc = iota // not a URL, the URL's leading part, or raw()
	escPath                // url.PathEscape, and dot segments escaped
	escQuery               // url.QueryEscape: after the "?" (or the "#")
)

// rawFn is the identity function that marks a template part of a URL
// parameter as inserted as it is: ${ raw(env("HOOK_PATH")) }.
const rawFn = "raw"

func rawOption() expr.Option {
	return expr.Function(rawFn, func(params ...any) (any, error) { return params[0], nil }, new(func(string) string))
}

// isRawCall reports whether a part's checked tree is a raw(...) call.
func isRawCall(n ast.Node) bool { return callTo(n, rawFn) != nil }

// escapeURLParams marks the templates of the URL parameters (declared by
// the kind's Params, also inside objects) for escaping.
func escapeURLParams(decl []actions.Param, pv *pval) {
	if pv == nil || pv.kind != pvMap {
		return
	}
	for i, k := range pv.keys {
		for _, p := range decl {
			if p.Name != k {
				continue
			}
			switch {
			case p.Type == actions.URL && pv.vals[i].kind == pvTemplate && pv.vals[i].tmpl != nil:
				pv.vals[i] = &pval{kind: pvTemplate, tmpl: urlTemplate(pv.vals[i].tmpl)}
			case p.Type == actions.Object:
				escapeURLParams(p.Fields, pv.vals[i])
			}
		}
	}
}

// urlTemplate returns a copy of t (a template may be shared through a YAML
// alias) whose parts escape their values for where they land: a part
// before any literal text is the URL's base (scheme, host, often an
// env()) and is inserted as it is, as is a raw() part; a part after a
// literal "?" or "#" is escaped as a query value, any other as a path
// segment. So `https://crm/friends/${ To_Account }` cannot be steered to
// another path by a To_Account of "../../dlq/drop?x=".
func urlTemplate(t *template) *template {
	out := *t
	out.url = true
	out.parts = make([]tmplPart, len(t.parts))
	copy(out.parts, t.parts)
	var lit strings.Builder
	for i := range out.parts {
		p := &out.parts[i]
		if p.prog == nil {
			lit.WriteString(p.lit)
			continue
		}
		switch {
		case lit.Len() == 0 || p.raw:
		case strings.ContainsAny(lit.String(), "?#"):
			p.esc = escQuery
		default:
			p.esc = escPath
		}
	}
	return &out
}

// escapeURLValue escapes one inserted value.
func escapeURLValue(esc urlEsc, s string) string {
	if esc == escQuery {
		return url.QueryEscape(s)
	}
	if strings.Trim(s, ".") == "" {
		// "." and ".." pass PathEscape unchanged, and a server resolves
		// them as the current and the parent segment.
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}
