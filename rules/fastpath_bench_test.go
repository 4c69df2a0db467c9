package rules

import (
	"reflect"
	"testing"

	"github.com/friendflow/friendflow/bench/benchcpu"
)

// BenchmarkGainMatch is the gain of the fast path (fast.go) per callback of
// the load benchmark (bench/load.sh): the three events of
// examples/callbacks/friend_add.json, decoded as the receiver decodes them
// (decodeSample), matched against bench/genrules.sh's 100 rules, actions
// rendered. The same rules are loaded twice; impl=lib has every expression (conditions,
// once keys, templates) left to expr's VM by stripFast, as before the fast
// path; the index and everything else are the same. Besides ns/op it
// reports cpu-ns/callback, the process's CPU time per callback (garbage
// collection included), which unlike the wall time hardly moves when other
// processes compete for the cores:
//
//	go test -run '^$' -bench Gain -benchmem -cpu 1 -count 8 ./rules/ | benchstat -col /impl -
func BenchmarkGainMatch(b *testing.B) {
	fast, lib := loadFastAndVM(b, benchRules(b))
	evs := decodeSample(b, "friend_add.json")
	for i := range evs {
		// Through reflection, to compare every result Match returns.
		arg := []reflect.Value{reflect.ValueOf(&evs[i])}
		got, want := reflect.ValueOf(fast.Match).Call(arg), reflect.ValueOf(lib.Match).Call(arg)
		if got[0].Len() != 1 || !reflect.DeepEqual(valuesOf(got), valuesOf(want)) {
			b.Fatalf("event %d: fast %+v, VM %+v; want the same one match", i, valuesOf(got), valuesOf(want))
		}
	}
	for _, c := range []struct {
		impl string
		set  *Set
	}{{"fast", fast}, {"lib", lib}} {
		b.Run("impl="+c.impl, func(b *testing.B) {
			benchcpu.Loop(b, 1, func() {
				for i := range evs {
					c.set.Match(&evs[i])
				}
			})
		})
	}
}

func valuesOf(vs []reflect.Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v.Interface()
	}
	return out
}
