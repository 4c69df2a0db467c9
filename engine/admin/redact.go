package admin

import (
	"errors"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/friendflow/friendflow/actions"
	"go.yaml.in/yaml/v3"
)

// redactSource hides the secrets in rule source shown by the console,
// working on the parsed YAML tree, so that every YAML form is covered:
// the value of a secret key (block, flow, quoted with escapes, folded or
// literal blocks, multi-line plain scalars, explicit "? key" entries, and
// anchored values reached through an alias), and, in any value, a URL's
// user info and query (RedactURL). Each hidden value is replaced in place
// by a quoted "<redacted>" and the lines it spanned are left blank, so
// line numbers stay those of the file (problems are shown by line) and
// the source still loads: Try a change starts from it, and redacted
// values render redacted, so the backtest diff is the same. Keys stay.
// A flow collection holding a secret is written again whole, on one line.
// Source that does not parse is not shown at all.
func redactSource(lines []string, keys map[string]bool) []string {
	if len(lines) == 0 {
		return lines
	}
	src := strings.Join(lines, "\n")
	dec := yaml.NewDecoder(strings.NewReader(src))
	r := &redactor{keys: keys, marked: map[*yaml.Node]string{}, seen: map[*yaml.Node]int{}}
	var docs []*yaml.Node
	for {
		doc := new(yaml.Node)
		if err := dec.Decode(doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return unparsable(len(lines))
		}
		docs = append(docs, doc)
		r.walk(doc, false)
	}
	if len(r.marked) == 0 {
		return lines
	}
	var order []*yaml.Node // every node in document order, aliases not followed
	for _, d := range docs {
		order = appendNodes(order, d)
	}
	out := append([]string(nil), lines...)
	for _, u := range r.units(order) {
		if !r.rewrite(out, u, order) {
			return unparsable(len(lines))
		}
	}
	return out
}

// unparsable is what is shown of source that cannot be redacted safely:
// nothing but a note, on as many lines.
func unparsable(n int) []string {
	out := make([]string, n)
	out[0] = "# not shown: the file does not parse as YAML now, and may hold secrets"
	return out
}

type redactor struct {
	keys   map[string]bool
	marked map[*yaml.Node]string // scalar → its replacement value
	seen   map[*yaml.Node]int    // 1: walked, 2: walked as secret
}

// walk marks the scalars under n to hide: all of them under a secret key,
// and the URLs with credentials anywhere.
func (r *redactor) walk(n *yaml.Node, secret bool) {
	state := 1
	if secret {
		state = 2
	}
	if r.seen[n] >= state {
		return // each node once (an alias bomb is no bomb here)
	}
	r.seen[n] = state
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			r.walk(c, secret)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			r.walk(k, false)
			r.walk(v, secret || k.Kind == yaml.ScalarNode && r.keys[k.Value])
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			r.walk(n.Alias, secret)
		}
	case yaml.ScalarNode:
		if secret && n.Value != "" {
			r.marked[n] = actions.Redacted
		} else if v, ok := redactURLs(n.Value); ok {
			r.marked[n] = v
		}
	}
}

// urlPattern finds URLs in text, for redactURLs.
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// redactURLs hides the user info and query of the URLs in s.
func redactURLs(s string) (string, bool) {
	if !strings.Contains(s, "://") {
		return s, false
	}
	changed := false
	out := urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		u, err := url.Parse(m)
		if err != nil {
			if strings.ContainsAny(m, "@?") {
				changed = true
				return actions.Redacted // unparsable: nothing says where a token would end
			}
			return m
		}
		if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
			return m
		}
		changed = true
		return actions.RedactURL(u)
	})
	return out, changed
}

// units are the nodes to write again: each marked scalar, or the
// outermost flow collection that holds one; in document order.
func (r *redactor) units(order []*yaml.Node) []*yaml.Node {
	parent := map[*yaml.Node]*yaml.Node{}
	for _, n := range order {
		for _, c := range n.Content {
			parent[c] = n
		}
	}
	chosen := map[*yaml.Node]bool{}
	for n := range r.marked {
		unit := n
		for p := parent[n]; p != nil; p = parent[p] {
			if p.Style&yaml.FlowStyle != 0 && (p.Kind == yaml.MappingNode || p.Kind == yaml.SequenceNode) {
				unit = p
			}
		}
		chosen[unit] = true
	}
	var out []*yaml.Node
	for _, n := range order {
		if chosen[n] {
			out = append(out, n)
		}
	}
	return out
}

// rewrite replaces unit u in lines: its text from its position to the
// next node after it, or to the end of the source. It says false when it
// cannot do so safely.
func (r *redactor) rewrite(lines []string, u *yaml.Node, order []*yaml.Node) bool {
	text, ok := r.render(u)
	if !ok {
		return false
	}
	startLine, startCol := u.Line-1, u.Column-1
	if startLine < 0 || startLine >= len(lines) {
		return false
	}
	// The end: the first node after u's subtree in document order (a
	// preorder: the node after its last one), else the end of the source.
	endLine := len(lines)
	if i := slices.Index(order, lastNode(u)); i >= 0 && i+1 < len(order) {
		endLine = order[i+1].Line - 1
	}
	line := lines[startLine]
	at := byteCol(line, startCol)
	if at < 0 {
		return false
	}
	if endLine == startLine {
		// The next node is on the same line: only a flow collection's
		// closing would sit between them, and a unit is outside any.
		return false
	}
	lines[startLine] = line[:at] + text
	// The text before the next node on its line is indentation and
	// indicators ("- ", "? "): kept.
	for i := startLine + 1; i < endLine && i < len(lines); i++ {
		if t := strings.TrimSpace(lines[i]); t == "---" || t == "..." {
			continue // a document marker belongs to the stream
		}
		lines[i] = ""
	}
	return true
}

// render is u with its marked scalars replaced, on one line: a quoted
// scalar, or a flow collection; an anchor stays.
func (r *redactor) render(u *yaml.Node) (string, bool) {
	prefix := ""
	if u.Anchor != "" {
		prefix = "&" + u.Anchor + " "
	}
	if u.Kind == yaml.ScalarNode {
		// Go's quoting escapes are YAML's double-quoted ones too
		// (https://yaml.org/spec/1.2.2/#57-escaped-characters).
		return prefix + strconv.Quote(r.marked[u]), true
	}
	c := r.copyRedacted(u)
	c.Anchor = ""
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", false
	}
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "\n") {
		return "", false
	}
	return prefix + s, true
}

// copyRedacted copies n with its marked scalars replaced, in flow style,
// without comments.
func (r *redactor) copyRedacted(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	if v, ok := r.marked[n]; ok {
		c.Value, c.Style, c.Tag = v, yaml.DoubleQuotedStyle, "!!str"
	} else if n.Kind == yaml.ScalarNode && strings.ContainsAny(n.Value, "\n") {
		c.Style = yaml.DoubleQuotedStyle
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		c.Style = yaml.FlowStyle
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = r.copyRedacted(k)
	}
	return &c
}

// appendNodes appends n and the nodes under it in document order; aliases
// are nodes of their own, not followed.
func appendNodes(out []*yaml.Node, n *yaml.Node) []*yaml.Node {
	out = append(out, n)
	for _, c := range n.Content {
		out = appendNodes(out, c)
	}
	return out
}

// lastNode is the last node of n's subtree in document order.
func lastNode(n *yaml.Node) *yaml.Node {
	for len(n.Content) > 0 {
		n = n.Content[len(n.Content)-1]
	}
	return n
}

// byteCol is the byte offset of the col-th character (0-based) of line,
// -1 past its end.
func byteCol(line string, col int) int {
	i := 0
	for range col {
		if i >= len(line) {
			return -1
		}
		_, size := utf8.DecodeRuneInString(line[i:])
		i += size
	}
	return i
}
