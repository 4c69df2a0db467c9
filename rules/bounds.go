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
)

// limits are Options' limits with the defaults applied.
type limits struct {
	fileBytes, setBytes int64
	nodes, aliasDepth   int
	evalSteps           int
	evalMemory          uint
}

func (o *Options) limits() limits {
	return limits{
		fileBytes:  orDefault(o.MaxFileBytes, DefaultMaxFileBytes),
		setBytes:   orDefault(o.MaxSetBytes, DefaultMaxSetBytes),
		nodes:      orDefault(o.MaxNodes, DefaultMaxNodes),
		aliasDepth: orDefault(o.MaxAliasDepth, DefaultMaxAliasDepth),
		evalSteps:  orDefault(o.EvalSteps, DefaultEvalSteps),
		evalMemory: orDefault(o.EvalMemory, DefaultEvalMemory),
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
// tree with every alias expanded stays within the node and alias-depth
// limits, and that no alias refers to a value that contains it. It never
// expands: an anchored value's expanded size is computed once and reused by
// every alias to it, so the check is linear in the size of the file.
type yamlBounds struct {
	maxNodes, maxDepth int
	total              int // expanded nodes met so far, in document order
	memo               map[*yaml.Node]expanded
	busy               map[*yaml.Node]bool // anchored values being measured
}

type expanded struct{ nodes, depth int }

// boundsError is where and why a file is over a limit.
type boundsError struct {
	at  *yaml.Node
	msg string
}

func checkYAMLBounds(doc *yaml.Node, maxNodes, maxDepth int) *boundsError {
	b := &yamlBounds{maxNodes: maxNodes, maxDepth: maxDepth, memo: map[*yaml.Node]expanded{}, busy: map[*yaml.Node]bool{}}
	return b.walk(doc)
}

// walk counts n's expanded nodes into total, failing at the first node that
// takes total over the limit.
func (b *yamlBounds) walk(n *yaml.Node) *boundsError {
	if n.Kind == yaml.AliasNode {
		e, err := b.alias(n)
		if err != nil {
			return err
		}
		b.total += e.nodes
		if b.total > b.maxNodes {
			return b.tooMany(n)
		}
		return nil
	}
	b.total++
	if b.total > b.maxNodes {
		return b.tooMany(n)
	}
	for _, c := range n.Content {
		if err := b.walk(c); err != nil {
			return err
		}
	}
	return nil
}

func (b *yamlBounds) tooMany(n *yaml.Node) *boundsError {
	return &boundsError{at: n, msg: fmt.Sprintf(
		"the file has more than %d YAML nodes with its aliases (*name) expanded; "+
			"split it, or use fewer and shallower aliases", b.maxNodes)}
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

// measure returns the expanded size (capped just past the limit, so that
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
	e := expanded{nodes: 1}
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
		e.depth = max(e.depth, ce.depth)
	}
	if n.Anchor != "" {
		b.memo[n] = e
	}
	return e, nil
}
