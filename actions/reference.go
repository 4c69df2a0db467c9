package actions

import (
	"fmt"
	"strings"
	"time"
)

// syncOnly says where a Sync kind may be used, in the reference; rules
// enforces it at load.
const syncOnly = "Only on the before-callbacks (the Prev commands), whose reply it decides."

// Reference renders the kinds' declarations as Markdown: the README's
// action reference is this text, so documentation cannot drift from what
// the loader enforces.
func Reference(reg *Registry) string {
	var b strings.Builder
	for _, k := range reg.Kinds() {
		s := k.Spec()
		fmt.Fprintf(&b, "#### `%s`\n\n%s\n", s.Name, s.Doc)
		if s.Sync {
			b.WriteString("\n" + syncOnly + "\n")
		}
		if len(s.Params) > 0 {
			b.WriteString("\n| parameter | type | default | example | meaning |\n| --- | --- | --- | --- | --- |\n")
			writeParams(&b, s.Params, "")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func writeParams(b *strings.Builder, ps []Param, prefix string) {
	for _, p := range ps {
		def := "—"
		switch {
		case p.Required:
			def = "required"
		case p.Default != nil:
			def = "`" + p.DefaultText() + "`"
		}
		doc := p.Doc
		if p.MinItems > 0 || p.MaxItems > 0 {
			doc += fmt.Sprintf(" (%s items)", itemRange(p.MinItems, p.MaxItems))
		}
		if len(p.Enum) > 0 {
			doc += " (one of `" + strings.Join(p.Enum, "`, `") + "`)"
		}
		if p.Secret {
			doc += "; secret: never logged, redacted in explain"
		}
		example := "—"
		if p.Example != "" {
			example = "`" + strings.ReplaceAll(p.Example, "|", `\|`) + "`"
		}
		fmt.Fprintf(b, "| `%s%s` | %s | %s | %s | %s |\n", prefix, p.Name, p.Type, def, example, strings.ReplaceAll(doc, "|", `\|`))
		if p.Type == Object {
			writeParams(b, p.Fields, prefix+p.Name+".")
		}
	}
}

// DefaultText is p's default as a rule file would write it ("5s", "info",
// `""`), or "" when p has none.
func (p Param) DefaultText() string {
	v := p.Default
	if v == nil {
		return ""
	}
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	if s, ok := v.(string); ok && s == "" {
		return `""`
	}
	return fmt.Sprint(v)
}

func itemRange(lo, hi int) string {
	switch {
	case hi == 0:
		return fmt.Sprintf("at least %d", lo)
	case lo == 0:
		return fmt.Sprintf("at most %d", hi)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}
