package actions

// Redacted replaces the value of a secret parameter wherever parameters
// are shown: /rules, explain, recorded events, dead letters, the console.
const Redacted = "<redacted>"

// Redact returns a copy of params with the values of secret parameters (and
// secret fields of objects) replaced by Redacted. nil stays nil.
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
			case p.Type == Object:
				if m, ok := v.(map[string]any); ok {
					out[k] = redactFields(p.Fields, m)
				}
			}
		}
	}
	return out
}
