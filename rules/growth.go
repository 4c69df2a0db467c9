package rules

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/conf"
)

// Growth: what an evaluation builds, charged to its budget before it is
// built. expr's VM checks a range's size only against its per-run memory
// budget (a million elements, 8 MB, per event), checks repeat()'s after
// allocating it, and does not count what + and the other builtins build at
// all: `let v1 = v0 + v0; let v2 = v1 + v1; …` twenty times over a 64-byte
// account is 64 MiB in one condition. growPatcher rewrites every place
// where an expression can build more than it reads:
//
//   - a range a..b becomes rangeFn(a, b), which charges its elements
//     (8 bytes and one step each) before making them; in `x in a..b` the
//     range stays, since expr's optimizer turns it into two comparisons;
//   - repeat, replace and join become functions of their own that charge
//     the size of their result, computed from their arguments, before
//     building it;
//   - the operands of + (when they are not the event's fields or
//     constants, which are bounded by the callback's size) and the
//     arguments of the other builtins that build strings or lists pass
//     through sizedFn, which charges their size: the result is at most
//     about the size of the arguments.
//
// So a rule that doubles a string fails at its budget's first megabyte
// (Options.EvalBytes) instead of at the process's memory limit.
const (
	rangeFn   = "ff range"
	sizedFn   = "ff sized"
	repeatFn  = "ff repeat"
	replaceFn = "ff replace"
	joinFn    = "ff join"
)

// growthBuiltins build a string or a list about as large as their
// arguments (some of them walk the arguments' elements): their arguments
// are charged.
var growthBuiltins = map[string]bool{
	"trim": true, "trimPrefix": true, "trimSuffix": true, "upper": true, "lower": true,
	"split": true, "splitAfter": true, "toJSON": true, "fromJSON": true, "toBase64": true, "fromBase64": true,
	"string": true, "keys": true, "values": true, "toPairs": true, "fromPairs": true, "reverse": true,
	"uniq": true, "concat": true, "flatten": true, "sort": true, "take": true,
}

// growthFunctions are the expr options that declare the growth functions.
func growthFunctions() []expr.Option {
	intsType := reflect.TypeOf([]int{})
	strType := reflect.TypeOf("")
	fns := []*builtin.Function{
		{Name: rangeFn, Func: growRange, Validate: validateArgs(3, intsType)},
		// Passes its value through, type and all.
		{Name: sizedFn, Func: growSized, Validate: func(args []reflect.Type) (reflect.Type, error) {
			if len(args) != 2 {
				return nil, fmt.Errorf("%s: want 2 arguments", sizedFn)
			}
			return args[1], nil
		}},
		{Name: repeatFn, Func: growRepeat, Validate: validateArgs(3, strType)},
		{Name: replaceFn, Func: growReplace, Validate: validateArgs(4, strType)},
		{Name: joinFn, Func: growJoin, Validate: validateArgs(3, strType)},
	}
	opts := make([]expr.Option, len(fns))
	for i, fn := range fns {
		opts[i] = func(c *conf.Config) { c.Functions[fn.Name] = fn }
	}
	return opts
}

// validateArgs types a growth function: its arguments were typed as the
// builtin's it replaces, so only the count is checked.
func validateArgs(n int, out reflect.Type) func([]reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		if len(args) != n {
			return nil, fmt.Errorf("want %d arguments", n)
		}
		return out, nil
	}
}

// growRange(env, a, b) is a..b, charged before it is made.
func growRange(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	lo, hi := toInt(args[1]), toInt(args[2])
	n := 0
	if hi >= lo {
		n = satAdd(hi-lo, 1)
	}
	if err := b.spend(n, satMul(n, 8)); err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i := range out {
		out[i] = lo + i
	}
	return out, nil
}

// growSized(env, v) charges v's size and returns v.
func growSized(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	if err := b.spend(0, valueBytes(args[1], b.maxBytes-b.bytes+1)); err != nil {
		return nil, err
	}
	return args[1], nil
}

// growRepeat(env, s, n) is repeat(s, n), charged before it is built.
func growRepeat(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	s, _ := args[1].(string)
	n := toInt(args[2])
	if n < 0 {
		return nil, fmt.Errorf("invalid argument for repeat (expected positive integer, got %d)", n)
	}
	if err := b.spend(0, satMul(len(s), n)); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

// growReplace(env, s, old, new) is replace(s, old, new), charged its
// largest result before it is built.
func growReplace(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	s, _ := args[1].(string)
	old, _ := args[2].(string)
	repl, _ := args[3].(string)
	// At most one replacement per len(old) bytes of s; an empty old
	// matches before every rune and at the end.
	matches := len(s) + 1
	if len(old) > 0 {
		matches = len(s)/len(old) + 1
	}
	if err := b.spend(0, satAdd(len(s), satMul(matches, len(repl)))); err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s, old, repl), nil
}

// growJoin(env, list, glue) is join(list, glue), charged before it is
// built; glue is "" when join had none.
func growJoin(args ...any) (any, error) {
	b, err := budgetOf(args[0])
	if err != nil {
		return nil, err
	}
	glue, _ := args[2].(string)
	var parts []string
	switch l := args[1].(type) {
	case []string:
		parts = l
	case []any:
		parts = make([]string, len(l))
		for i, v := range l {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("invalid argument for join (type %T)", v)
			}
			parts[i] = s
		}
	default:
		return nil, fmt.Errorf("invalid argument for join (type %T)", args[1])
	}
	size := satMul(max(len(parts)-1, 0), len(glue))
	for _, p := range parts {
		size = satAdd(size, len(p))
	}
	if err := b.spend(0, size); err != nil {
		return nil, err
	}
	return strings.Join(parts, glue), nil
}

// valueBytes is about what building from v costs: its strings' bytes, 16
// for every other element of a list or map (a reference to it). It stops
// counting past limit, so measuring a huge value costs no more than the
// budget it fails.
func valueBytes(v any, limit int) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		n := 16 * len(x)
		for _, e := range x {
			if n > limit {
				break
			}
			n += valueBytes(e, limit-n)
		}
		return n
	case map[string]any:
		n := 16 * len(x)
		for k, e := range x {
			if n > limit {
				break
			}
			n += len(k) + valueBytes(e, limit-n)
		}
		return n
	case []string:
		n := 16 * len(x)
		for _, e := range x {
			if n > limit {
				break
			}
			n += len(e)
		}
		return n
	case nil, bool, int, float64:
		return 8
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return satMul(rv.Len(), 16)
	case reflect.String:
		return rv.Len()
	}
	return 8
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case float64:
		return int(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(min(rv.Uint(), math.MaxInt))
	case reflect.Float32, reflect.Float64:
		return int(rv.Float())
	}
	return 0
}

// satAdd and satMul are + and * of sizes (not negative), stopping at
// math.MaxInt instead of wrapping.
func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func satMul(a, b int) int {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt/b {
		return math.MaxInt
	}
	return a * b
}

// growPatcher rewrites ranges, + and the builtins that build, as the
// comment at the top of this file says.
type growPatcher struct{}

func (growPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		switch {
		case n.Operator == "..":
			*node = growCall(rangeFn, n, n.Left, n.Right)
		case n.Operator == "in":
			// Visited after its operands: undo the range's rewrite, for
			// the optimizer to turn into comparisons.
			if c := callTo(n.Right, rangeFn); c != nil {
				r := &ast.BinaryNode{Operator: "..", Left: c.Arguments[1], Right: c.Arguments[2]}
				r.SetLocation(c.Location())
				r.SetNature(*c.Nature())
				n.Right = r
			}
		case n.Operator == "+" && builds(n.Nature()) && !(bounded(n.Left) && bounded(n.Right)):
			n.Left, n.Right = sized(n.Left), sized(n.Right)
		}
	case *ast.BuiltinNode:
		switch {
		case n.Name == "repeat" && len(n.Arguments) == 2:
			*node = growCall(repeatFn, n, n.Arguments...)
		case n.Name == "replace" && len(n.Arguments) == 3:
			*node = growCall(replaceFn, n, n.Arguments...)
		case n.Name == "join" && len(n.Arguments) == 1:
			glue := &ast.StringNode{Value: ""}
			glue.SetLocation(n.Location())
			glue.SetType(reflect.TypeOf(""))
			*node = growCall(joinFn, n, n.Arguments[0], glue)
		case n.Name == "join" && len(n.Arguments) == 2:
			*node = growCall(joinFn, n, n.Arguments...)
		case growthBuiltins[n.Name]:
			for i, a := range n.Arguments {
				n.Arguments[i] = sized(a)
			}
		}
	}
}

// builds reports whether + of this nature can build something large: a
// string or a list, or a value whose type is only known at run time.
func builds(nt *nature.Nature) bool {
	switch nt.Kind {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Interface, reflect.Invalid:
		return true
	}
	return false
}

// bounded reports whether n is bounded by the callback's own size: a
// constant, an event field (a let cannot take a field's name) or + of
// such.
func bounded(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return true
	case *ast.IdentifierNode:
		_, ok := tableFields[n.Value]
		return ok
	case *ast.BinaryNode:
		return n.Operator == "+" && bounded(n.Left) && bounded(n.Right)
	}
	return false
}

// sized wraps n in a call of sizedFn, keeping its nature.
func sized(n ast.Node) ast.Node {
	if callTo(n, sizedFn) != nil || bounded(n) {
		return n
	}
	return growCall(sizedFn, n, n)
}

// growCall is a call of the growth function fn with $env and args, in
// place of the node was, with its location and nature.
func growCall(fn string, was ast.Node, args ...ast.Node) *ast.CallNode {
	env := &ast.IdentifierNode{Value: "$env"}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: append([]ast.Node{env}, args...)}
	for _, n := range []ast.Node{env, call.Callee, call} {
		n.SetLocation(was.Location())
	}
	// The checker has typed the tree before it runs patches, and takes a
	// call's nature as set when it knows a type.
	call.SetNature(*was.Nature())
	return call
}
