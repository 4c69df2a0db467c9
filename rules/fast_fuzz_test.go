package rules

import (
	"math"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/friendflow/friendflow/rules/imevent"
)

// FuzzFastValueMatchesVM does for values what FuzzFastMatchesVM does for
// conditions: any expression the fast path takes as a template part or a
// once key (a string, int or bool, not only a bool) must give the VM's
// value, of the VM's type, on an event built from the fuzzed values.
func FuzzFastValueMatchesVM(f *testing.F) {
	for i, c := range trickyWhens {
		f.Add(c.src, "alice", "bob", "friend_add", int64(i%3), int64(1-i))
	}
	for _, src := range []string{
		`From_Account`, `PairIndex`, `-SdkAppid`, `- -ForceFlag`, `+PairCount`, `"lit"`, `42`, `-7`,
		`From_Account + "|" + To_Account`, `To_Account + From_Account + ClientCmd`, `ForceFlag == 1`,
		`!(EventTime > PairCount)`, `From_Account matches "^a"`, `-EventTime`,
	} {
		f.Add(src, "alice", "bob", "friend_add", int64(math.MinInt64), int64(math.MaxInt64))
	}
	l := newLoader(nil, func(string) string { return "" }, (&Options{}).limits())
	f.Fuzz(func(t *testing.T, src, a, b, c string, n, m int64) {
		var fast fexpr
		prog, err := l.compiler.compile(src, "", func(node ast.Node) { fast, _ = fastCompile(node) })
		if err != nil || fast.kind == 0 {
			return
		}
		ev := &imevent.Event{
			CallbackCommand: c, From_Account: a, To_Account: b, ClientCmd: c, AddWording: a + b,
			Initiator_Account: a, ForceFlag: int(n), PairCount: int(m), PairIndex: int(n - m), EventTime: int(n * m),
			SdkAppid: int(m - n),
		}
		want, err := expr.Run(prog, envOf(ev))
		if err != nil {
			t.Fatalf("%s: VM: %v (the fast path cannot fail)", src, err)
		}
		if got := (&tmplPart{fast: fast}).value(ev); got != want {
			t.Fatalf("%s: fast %#v, VM %#v for %+v", src, got, want, ev)
		}
	})
}
