package rules

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Default limits of Options. A rule file is written by people, so these are
// far above any real one (the examples are a few KiB and a few hundred
// nodes) and far below what hurts: the loader expands every YAML alias as
// it walks a file, so a few hundred bytes of nested aliases ("billion
// laughs") would otherwise stand for billions of nodes.
const (
	DefaultMaxFileBytes  = 1 << 20 // one rule file
	DefaultMaxSetBytes   = 8 << 20 // all the files of one Load
	DefaultMaxNodes      = 100_000 // YAML nodes of one file, every alias expanded
	DefaultMaxAliasDepth = 5       // aliases inside anchored values inside anchored values …
	// DefaultMaxExpandedBytes bounds the text of one file with every alias
	// expanded (its scalars' bytes): the node limit alone lets a few
	// anchored long strings, each aliased thousands of times, stand for
	// hundreds of megabytes (66 KB of YAML for 460 MB) that the loader,
	// explain and the console would each copy. A file without aliases
	// is within it whenever it is within DefaultMaxFileBytes.
	DefaultMaxExpandedBytes = 8 << 20
)

// limits are Options' limits with the defaults applied.
type limits struct {
	fileBytes, setBytes          int64
	nodes, aliasDepth            int
	expandedBytes                int
	evalSteps, evalBytes         int
	callbackSteps, callbackBytes int
	evalMemory                   uint
}

func (o *Options) limits() limits {
	return limits{
		fileBytes:     orDefault(o.MaxFileBytes, DefaultMaxFileBytes),
		setBytes:      orDefault(o.MaxSetBytes, DefaultMaxSetBytes),
		nodes:         orDefault(o.MaxNodes, DefaultMaxNodes),
		aliasDepth:    orDefault(o.MaxAliasDepth, DefaultMaxAliasDepth),
		expandedBytes: orDefault(o.MaxExpandedBytes, DefaultMaxExpandedBytes),
		evalSteps:     orDefault(o.EvalSteps, DefaultEvalSteps),
		evalBytes:     orDefault(o.EvalBytes, DefaultEvalBytes),
		callbackSteps: orDefault(o.CallbackSteps, DefaultCallbackSteps),
		callbackBytes: orDefault(o.CallbackBytes, DefaultCallbackBytes),
		evalMemory:    orDefault(o.EvalMemory, DefaultEvalMemory),
	}
}

// orDefault is v, or def when v is not positive.
func orDefault[T int | int64 | uint](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// yamlBounds checks, before anything walks a file's node tree, that the
// tree with every alias expanded stays within the node, byte and
// alias-depth limits, and that no alias refers to a value that contains
// it. It never expands: an anchored value's expanded size is computed once
// and reused by every alias to it, so the check is linear in the size of
// the file.
type yamlBounds struct {
	maxNodes, maxDepth, maxBytes int
	total                        expanded // met so far, in document order (depth unused)
	memo                         map[*yaml.Node]expanded
	busy                         map[*yaml.Node]bool // anchored values being measured
}

// expanded is a value's size with its aliases expanded: nodes, the bytes
// of its scalars (keys and values) and how deep its aliases nest.
type expanded struct{ nodes, bytes, depth int }

// boundsError is where and why a file is over a limit.
type boundsError struct {
	at  *yaml.Node
	msg string
}

func checkYAMLBounds(doc *yaml.Node, lim limits) *boundsError {
	b := &yamlBounds{maxNodes: lim.nodes, maxDepth: lim.aliasDepth, maxBytes: lim.expandedBytes,
		memo: map[*yaml.Node]expanded{}, busy: map[*yaml.Node]bool{}}
	return b.walk(doc)
}

// walk counts n's expanded nodes and bytes into total, failing at the
// first node that takes total over a limit.
func (b *yamlBounds) walk(n *yaml.Node) *boundsError {
	if n.Kind == yaml.AliasNode {
		e, err := b.alias(n)
		if err != nil {
			return err
		}
		return b.add(n, e)
	}
	if err := b.add(n, expanded{nodes: 1, bytes: len(n.Value)}); err != nil {
		return err
	}
	for _, c := range n.Content {
		if err := b.walk(c); err != nil {
			return err
		}
	}
	return nil
}

// add counts e into the total, failing when it passes a limit.
func (b *yamlBounds) add(n *yaml.Node, e expanded) *boundsError {
	b.total.nodes += e.nodes
	b.total.bytes += e.bytes
	switch {
	case b.total.nodes > b.maxNodes:
		return &boundsError{at: n, msg: fmt.Sprintf(
			"the file has more than %d YAML nodes with its aliases (*name) expanded; "+
				"split it, or use fewer and shallower aliases", b.maxNodes)}
	case b.total.bytes > b.maxBytes:
		return &boundsError{at: n, msg: fmt.Sprintf(
			"the file's text passes %d bytes with its aliases (*name) expanded; "+
				"alias long values less often, or split the file", b.maxBytes)}
	}
	return nil
}

// alias measures the value an alias stands for and checks its depth.
func (b *yamlBounds) alias(n *yaml.Node) (expanded, *boundsError) {
	if n.Alias == nil {
		return expanded{nodes: 1}, nil
	}
	e, err := b.measure(n.Alias, n)
	if err != nil {
		return e, err
	}
	e.depth++
	if e.depth > b.maxDepth {
		return e, &boundsError{at: n, msg: fmt.Sprintf(
			"aliases nested %d deep (an alias to a value holding aliases to values holding aliases …); at most %d", e.depth, b.maxDepth)}
	}
	return e, nil
}

// measure returns the expanded size (capped just past the limits, so that
// sums cannot overflow) and the alias depth of n, an alias's target.
func (b *yamlBounds) measure(n, from *yaml.Node) (expanded, *boundsError) {
	if e, ok := b.memo[n]; ok {
		return e, nil
	}
	if b.busy[n] {
		return expanded{}, &boundsError{at: from, msg: fmt.Sprintf("alias *%s refers to a value that contains it", from.Value)}
	}
	b.busy[n] = true
	defer delete(b.busy, n)
	e := expanded{nodes: 1, bytes: len(n.Value)}
	for _, c := range n.Content {
		var ce expanded
		if c.Kind == yaml.AliasNode {
			var err *boundsError
			if ce, err = b.alias(c); err != nil {
				return e, err
			}
		} else {
			var err *boundsError
			if ce, err = b.measure(c, from); err != nil {
				return e, err
			}
		}
		e.nodes = min(e.nodes+ce.nodes, b.maxNodes+1)
		e.bytes = min(e.bytes+ce.bytes, b.maxBytes+1)
		e.depth = max(e.depth, ce.depth)
	}
	if n.Anchor != "" {
		b.memo[n] = e
	}
	return e, nil
}
