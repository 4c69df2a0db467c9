package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Format returns a rule file in the one canonical layout `friendflow fmt`
// writes: two-space indentation, block sequences indented under their key,
// one space inside a flow mapping's braces ({ a: 1 }), one blank line
// between the items of a top-level list (the rules) and none elsewhere, a
// comment one space after its value. Key order, comments, quoting, flow or
// block style, anchors and aliases are kept: it changes the layout, never
// what the file says, and refuses to write a result whose node tree or
// comments differ from the input's. Format(Format(x)) == Format(x).
//
// Aliases are never expanded (the file is handled as a node tree), so an
// alias bomb costs no more than its own bytes.
func Format(src []byte) ([]byte, error) {
	if len(src) > DefaultMaxFileBytes {
		return nil, fmt.Errorf("the file is %d bytes, more than %d", len(src), DefaultMaxFileBytes)
	}
	docs, err := parseDocs(src)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	out, err := layout(buf.Bytes())
	if err != nil {
		return nil, err
	}
	// The guarantee: the same tree and the same comments, whatever the
	// encoder did.
	again, err := parseDocs(out)
	if err != nil {
		return nil, fmt.Errorf("formatting would produce invalid YAML: %w", err)
	}
	if len(again) != len(docs) {
		return nil, errors.New("formatting would change the number of documents")
	}
	for i := range docs {
		if !sameTree(docs[i], again[i]) {
			return nil, errors.New("formatting would change the file's content; please report this file")
		}
		if a, b := comments(docs[i], nil), comments(again[i], nil); !slices.Equal(sorted(a), sorted(b)) {
			return nil, errors.New("formatting would lose or move a comment out of the file; please report this file")
		}
	}
	return out, nil
}

func parseDocs(src []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var docs []*yaml.Node
	for {
		var d yaml.Node
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &d)
	}
}

// sameTree compares what two node trees say: kinds, tags, values, anchors
// and aliases' targets, not styles, positions or comments.
func sameTree(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Value != b.Value || a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.AliasNode {
		return a.Alias != nil && b.Alias != nil && a.Alias.Anchor == b.Alias.Anchor
	}
	for i := range a.Content {
		if !sameTree(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// comments collects every comment's text in the tree, trimmed.
func comments(n *yaml.Node, out []string) []string {
	for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
		for l := range strings.Lines(c) {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	if n.Kind == yaml.AliasNode {
		return out
	}
	for _, c := range n.Content {
		out = comments(c, out)
	}
	return out
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// layout applies, to the encoder's output, what the encoder cannot be told:
// spaces inside flow mappings' braces and blank lines between top-level
// list items. It finds both from the nodes' own positions, never from the
// text (a quoted "{" or a "- " inside a block scalar is no node).
func layout(src []byte) ([]byte, error) {
	docs, err := parseDocs(src)
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(src), "\n")
	braces := map[int][]int{} // line index: columns (0-based) of flow mappings' "{"
	items := map[int]bool{}   // line indexes of top-level list items
	for _, d := range docs {
		flowMappings(d, braces)
		if len(d.Content) == 1 && d.Content[0].Kind == yaml.MappingNode {
			top := d.Content[0]
			for i := 1; i < len(top.Content); i += 2 {
				if v := top.Content[i]; v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 {
					for _, it := range v.Content[1:] {
						items[it.Line-1] = true
					}
				}
			}
		}
	}
	for i, cols := range braces {
		slices.Sort(cols)
		for _, col := range slices.Backward(cols) { // right to left: earlier columns stay valid
			lines[i] = spaceBraces(lines[i], col)
		}
	}
	return insertBlankLines(lines, items), nil
}

// insertBlankLines puts one blank line before each line in items, above
// the comment lines directly over it.
func insertBlankLines(lines []string, items map[int]bool) []byte {
	blank := map[int]bool{}
	for i := range items {
		start := i
		for start > 0 && isCommentLine(lines[start-1]) {
			start--
		}
		blank[start] = true
	}
	var out strings.Builder
	for i, l := range lines {
		if blank[i] && i > 0 {
			out.WriteString("\n")
		}
		out.WriteString(l)
	}
	return []byte(out.String())
}

func isCommentLine(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "#") }

// flowMappings records the position of every non-empty flow mapping.
func flowMappings(n *yaml.Node, at map[int][]int) {
	if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle != 0 && len(n.Content) > 0 {
		at[n.Line-1] = append(at[n.Line-1], n.Column-1)
	}
	if n.Kind == yaml.AliasNode {
		return
	}
	for _, c := range n.Content {
		flowMappings(c, at)
	}
}

// spaceBraces writes "{ … }" for the flow mapping whose "{" is at byte col
// of line: one space after the brace and one before its match, found by
// walking the text with quotes and nesting in mind. The encoder writes a
// flow mapping on one line.
func spaceBraces(line string, col int) string {
	if col >= len(line) || line[col] != '{' {
		return line
	}
	depth, quote := 0, byte(0)
	for i := col; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0 && c == quote:
			if quote == '\'' && i+1 < len(line) && line[i+1] == '\'' {
				i++ // '' inside single quotes
				continue
			}
			quote = 0
		case quote != 0:
		case (c == '"' || c == '\'') && quoteMayStart(line[col:i]):
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				inner := strings.TrimSpace(line[col+1 : i])
				return line[:col] + "{ " + inner + " }" + line[i+1:]
			}
		}
	}
	return line
}

// quoteMayStart: a quote opens a quoted scalar only where a scalar starts
// (after "{", "[", "," or ":" and spaces); elsewhere it is part of a plain
// one (don't).
func quoteMayStart(before string) bool {
	before = strings.TrimRight(before, " ")
	return before == "" || strings.ContainsRune("{[,:", rune(before[len(before)-1]))
}
