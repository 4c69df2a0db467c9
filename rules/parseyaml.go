package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/file"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/internal/suggest"
)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *fileParser) yamlError(data []byte, err error) {
	msg, line := yamlMessage(err)
	if l := yamlErrorLine(data, msg); l > 0 {
		line = l
	}
	p.problem(max(line, 1), 1, "invalid YAML: %s", msg)
}

// yamlMessage splits a yaml/v3 syntax error into its message and the line
// it names, if any.
func yamlMessage(err error) (string, int) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return m[2], line
	}
	return strings.TrimPrefix(msg, "yaml: "), 0
}

// yamlErrorLine finds the line of a syntax error: yaml/v3 names the line
// where the enclosing block starts, or none at all. It is the shortest
// prefix of the file, in whole lines, that fails with the same message;
// found by bisection, so a few parses of a file that is broken anyway.
func yamlErrorLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:k], nil)))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return false
			}
			m, _ := yamlMessage(err)
			return m == msg
		}
	}
	if !fails(len(lines)) {
		return 0
	}
	lo, hi := 1, len(lines)
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

type kv struct{ key, val *yaml.Node }

// mapping checks that n is a mapping with no duplicate and, when known is
// not nil, no unknown keys, and returns its pairs by key.
func (p *fileParser) mapping(n *yaml.Node, what string, known []string) (map[string]kv, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errAt(n, "%s: want a mapping, got %s", what, describeNode(n))
		return nil, false
	}
	out := make(map[string]kv, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			p.errAt(k, "%s: a key must be a name, got %s", what, describeNode(k))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errAt(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		if known != nil && !slices.Contains(known, k.Value) {
			p.errAt(k, "%s: unknown key %q%s", what, k.Value, suggestion(k.Value, known))
			continue
		}
		out[k.Value] = kv{key: k, val: n.Content[i+1]}
	}
	return out, true
}

// eachItem calls fn for every item of a list value (null is an empty
// list), naming each "<what>: <item> N" for its problems.
func (p *fileParser) eachItem(n *yaml.Node, what, key, item string, fn func(*yaml.Node, string)) {
	list := resolve(n)
	switch {
	case isNull(list):
	case list.Kind != yaml.SequenceNode:
		p.errAt(list, "%s: %s: want a list, got %s", what, key, describeNode(list))
	default:
		for i, it := range list.Content {
			fn(it, fmt.Sprintf("%s: %s %d", what, item, i+1))
		}
	}
}

func (p *fileParser) scalarString(n *yaml.Node, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(n, "%s: want a string, got %s", what, describeNode(n))
		return "", false
	}
	return n.Value, true
}

func (p *fileParser) boolean(n *yaml.Node, what string, def bool) bool {
	n = resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errAt(n, "%s: want true or false, got %s", what, describeNode(n))
		return def
	}
	return b
}

func (p *fileParser) duration(n *yaml.Node, what string) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errAt(n, "%s: want a duration like 30s, 10m or 24h, got %s", what, describeNode(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.errAt(n, "%s: invalid duration %q (use e.g. 30s, 10m, 24h)", what, n.Value)
		return 0, false
	}
	return d, true
}

// exprPos places an expr compile error inside the YAML scalar n whose
// expression starts at byte offset start of n.Value. It is exact for plain
// and quoted scalars on one line (when no escape changes the text) and for
// literal blocks (|); otherwise it falls back to the scalar's own position.
func (p *fileParser) exprPos(n *yaml.Node, start int, err error) (line, col int) {
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Line < 1 {
		return n.Line, n.Column
	}
	value := n.Value
	// Position of the error inside value: 0-based line, 0-based rune column.
	before := value[:start]
	vLine := strings.Count(before, "\n")
	vCol := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:])
	if fe.Line == 1 {
		vCol += fe.Column
	} else {
		vLine += fe.Line - 1
		vCol = fe.Column
	}
	if n.Line < 1 || n.Line > len(p.lines) {
		return n.Line, n.Column
	}
	switch {
	case !strings.Contains(value, "\n") && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0:
		rest, ok := fromRune(p.lines[n.Line-1], n.Column-1)
		if !ok {
			break
		}
		quoted := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
		if quoted {
			if rest == "" {
				break
			}
			rest = rest[1:]
		}
		if !strings.HasPrefix(rest, value) {
			break // escapes or folding changed the text
		}
		if quoted {
			return n.Line, n.Column + 1 + vCol
		}
		return n.Line, n.Column + vCol
	case n.Style&yaml.LiteralStyle != 0:
		valueLines := strings.Split(value, "\n")
		srcIdx := n.Line + vLine // n.Line is the "|" line; content starts below
		if vLine >= len(valueLines) || srcIdx >= len(p.lines) {
			break
		}
		srcLine, vl := p.lines[srcIdx], valueLines[vLine]
		indent := strings.TrimSuffix(srcLine, vl)
		if len(indent) == len(srcLine) && vl != "" || strings.TrimLeft(indent, " ") != "" {
			break
		}
		return srcIdx + 1, utf8.RuneCountInString(indent) + vCol + 1
	}
	return n.Line, n.Column
}

// fromRune is line from its rune i on; false when line is shorter. It
// slices instead of converting to runes: lint places a warning with
// exprPos for every finding of every load.
func fromRune(line string, i int) (string, bool) {
	for off := range line {
		if i == 0 {
			return line[off:], true
		}
		i--
	}
	return "", i == 0
}

// exprMessage is an expr error without its source snippet (the problem's
// position already says where), with a likely event field for a misspelt
// name.
func exprMessage(err error) string {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	msg = strings.TrimSpace(msg)
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		if best := closest(name, sortedKeys(EnvPrototype())); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		}
	}
	return msg
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return resolve(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a bool"
		case "!!int", "!!float":
			return "a number " + n.Value
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unsupported YAML value"
}

// suggestion names the closest known word, when one is close enough to be
// a likely typo, and lists the known words.
func suggestion(got string, known []string) string {
	list := strings.Join(known, ", ")
	if best := closest(got, known); best != "" {
		return fmt.Sprintf("; did you mean %q? (known: %s)", best, list)
	}
	return " (known: " + list + ")"
}

// closest returns the known word nearest to got, if it is near enough to
// be a typo.
func closest(got string, known []string) string {
	return suggest.Closest(got, known, maxSuggestDistance)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
