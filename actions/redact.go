package actions

import (
	"net/url"
	"strings"
)

// Redacted replaces the value of a secret parameter wherever parameters
// are shown: /rules, explain, recorded events, dead letters, the console.
const Redacted = "<redacted>"

// Redact returns a copy of params with the values of secret parameters (and
// secret fields of objects) replaced by Redacted, and URL parameters shown
// as RedactURL shows them. nil stays nil.
func (s Spec) Redact(params map[string]any) map[string]any {
	if params == nil {
		return nil
	}
	return redactFields(s.Params, params)
}

func redactFields(decl []Param, in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
		for _, p := range decl {
			if p.Name != k {
				continue
			}
			switch {
			case p.Secret:
				out[k] = Redacted
			case p.Type == URL:
				out[k] = redactURLValue(v)
			case p.Type == Object:
				if m, ok := v.(map[string]any); ok {
					out[k] = redactFields(p.Fields, m)
				}
			}
		}
	}
	return out
}

// redactURLValue is a URL parameter's value as RedactURL shows it.
func redactURLValue(v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	u, err := url.Parse(s)
	if err != nil {
		return Redacted // unparsable: nothing says where a token would end
	}
	return RedactURL(u)
}

// RedactURL is u as logs, errors and explain show it: no user info, no
// fragment, and the query, which often carries a token, elided.
func RedactURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	s := r.String()
	if base, _, ok := strings.Cut(s, "?"); ok {
		s = base + "?…"
	}
	return s
}
