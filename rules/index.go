package rules

import (
	mathbits "math/bits"
	"slices"

	"github.com/expr-lang/expr/ast"
	"github.com/friendflow/friendflow/rules/imevent"
)

// cmdRules are the enabled rules of one command, indexed so that Match
// evaluates only the rules that can match an event: a rule whose when has a
// top-level conjunct `Field == constant` (or `Field in [constants]`) can
// only match events whose Field has that value.
type cmdRules struct {
	always []int32 // rules without an indexable conjunct: always candidates
	fields []fieldIndex
}

// fieldIndex maps the values of one event field to the rules that require
// them, each list in file order.
type fieldIndex struct {
	name string
	get  eventField
	str  map[string][]int32
	num  map[int][]int32
}

// indexKey is the indexable conjunct chosen for a rule.
type indexKey struct {
	field string
	strs  []string
	nums  []int
}

func buildIndex(rules []*rule) map[string]*cmdRules {
	out := make(map[string]*cmdRules)
	for _, r := range rules {
		if !r.enabled || !r.ok {
			continue
		}
		key := r.whenKey
		idx := int32(r.idx)
		for _, cmd := range r.on {
			cr := out[cmd]
			if cr == nil {
				cr = &cmdRules{}
				out[cmd] = cr
			}
			if key == nil {
				cr.always = append(cr.always, idx)
				continue
			}
			fi := cr.field(key.field)
			for _, v := range key.strs {
				fi.str[v] = appendOnce(fi.str[v], idx)
			}
			for _, v := range key.nums {
				fi.num[v] = appendOnce(fi.num[v], idx)
			}
		}
	}
	return out
}

func (c *cmdRules) field(name string) *fieldIndex {
	for i := range c.fields {
		if c.fields[i].name == name {
			return &c.fields[i]
		}
	}
	// indexKeyOf only picks event fields, so the reader exists.
	f, _ := eventFieldOf(name)
	c.fields = append(c.fields, fieldIndex{name: name, get: f, str: map[string][]int32{}, num: map[int][]int32{}})
	return &c.fields[len(c.fields)-1]
}

// appendOnce appends idx unless it is already last (`in ["a", "a"]`).
func appendOnce(l []int32, idx int32) []int32 {
	if n := len(l); n > 0 && l[n-1] == idx {
		return l
	}
	return append(l, idx)
}

// candidates returns, in file order, the rules that may match ev. The
// result may alias the index or sc: read it before sc is reused.
func (c *cmdRules) candidates(ev *imevent.Event, sc *scratch) []int32 {
	if len(c.fields) == 0 {
		return c.always
	}
	lists := sc.lists[:0]
	if len(c.always) > 0 {
		lists = append(lists, c.always)
	}
	for i := range c.fields {
		f := &c.fields[i]
		var l []int32
		switch f.get.kind {
		case fkString:
			l = f.str[f.get.str(ev)]
		case fkInt:
			l = f.num[f.get.num(ev)]
		}
		if len(l) > 0 {
			lists = append(lists, l)
		}
	}
	sc.lists = lists
	// Each rule is in exactly one list (it is indexed by one conjunct), so
	// merging the lists restores file order without duplicates.
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	case 2:
		sc.cand = merge2(sc.cand[:0], lists[0], lists[1])
	default:
		sc.cand, sc.bits = mergeBits(sc.cand[:0], sc.bits, lists)
	}
	return sc.cand
}

func merge2(out, a, b []int32) []int32 {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] < b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// mergeBits merges three or more sorted lists by setting one bit per rule
// over the span of their indices and reading the bits back in order: a
// k-way merge compares k heads per rule, and the always-candidate list and
// the lists of common values (ClientCmd, ForceFlag) make that cost more
// than the conditions. bits is all zero on entry and is left so.
func mergeBits(out []int32, bits []uint64, lists [][]int32) ([]int32, []uint64) {
	lo, hi := lists[0][0], lists[0][len(lists[0])-1]
	for _, l := range lists[1:] {
		lo, hi = min(lo, l[0]), max(hi, l[len(l)-1])
	}
	n := int(hi-lo)/64 + 1
	if len(bits) < n {
		bits = make([]uint64, n)
	}
	for _, l := range lists {
		for _, v := range l {
			d := uint32(v - lo)
			bits[d/64] |= 1 << (d % 64)
		}
	}
	for w, x := range bits[:n] {
		if x == 0 {
			continue
		}
		bits[w] = 0
		base := lo + int32(w*64)
		for x != 0 {
			out = append(out, base+int32(mathbits.TrailingZeros64(x)))
			x &= x - 1
		}
	}
	return out, bits
}

// indexKeyOf picks the indexable top-level conjunct of a when: a
// `Field == constant` (either side) or `Field in [constants]`, where Field
// is an event field of the constant's type. A conjunct on an account
// prevails, then == over in, then the first: ClientCmd or ForceFlag take
// a handful of values, so a rule keyed by them is a candidate for most
// events, while an account names one user. Nil when there is none.
func indexKeyOf(n ast.Node, proto map[string]any) *indexKey {
	var best *indexKey
	bestScore := -1
	for _, c := range conjuncts(n) {
		b, ok := c.(*ast.BinaryNode)
		if !ok {
			continue
		}
		var k *indexKey
		score := 0
		switch b.Operator {
		case "==":
			if k = eqKey(b.Left, b.Right, proto); k == nil {
				k = eqKey(b.Right, b.Left, proto)
			}
			score = 1
		case "in":
			k = inKey(b.Left, b.Right, proto)
		}
		if k == nil {
			continue
		}
		if isAccount(k.field) {
			score += 2
		}
		if score > bestScore {
			best, bestScore = k, score
		}
	}
	return best
}

// isAccount reports whether field is a UserID (the field table's Account).
func isAccount(field string) bool {
	i := slices.IndexFunc(imevent.Fields, func(f imevent.Field) bool { return f.Name == field })
	return i >= 0 && imevent.Fields[i].Account
}

// conjuncts splits the top-level && (and) chain of n.
func conjuncts(n ast.Node) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && (b.Operator == "&&" || b.Operator == "and") {
		return append(conjuncts(b.Left), conjuncts(b.Right)...)
	}
	return []ast.Node{n}
}

func eqKey(field, constant ast.Node, proto map[string]any) *indexKey {
	id, ok := field.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	switch proto[id.Value].(type) {
	case string:
		if s, ok := constant.(*ast.StringNode); ok {
			return &indexKey{field: id.Value, strs: []string{s.Value}}
		}
	case int:
		if i, ok := constant.(*ast.IntegerNode); ok {
			return &indexKey{field: id.Value, nums: []int{i.Value}}
		}
	}
	return nil
}

func inKey(field, list ast.Node, proto map[string]any) *indexKey {
	id, ok := field.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	arr, ok := list.(*ast.ArrayNode)
	if !ok {
		return nil
	}
	k := &indexKey{field: id.Value}
	for _, e := range arr.Nodes {
		switch proto[id.Value].(type) {
		case string:
			s, ok := e.(*ast.StringNode)
			if !ok {
				return nil
			}
			k.strs = append(k.strs, s.Value)
		case int:
			i, ok := e.(*ast.IntegerNode)
			if !ok {
				return nil
			}
			k.nums = append(k.nums, i.Value)
		default:
			return nil
		}
	}
	return k
}
