package imcallback

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The gain of this package's three hand-written fast paths per callback of
// the load benchmark (bench/load.sh): one query, one body of 3 pairs, three
// events encoded for their jobs. Each benchmark runs the fast path and the
// library code it replaces on the same input, one callback's worth per
// operation, as sub-benchmarks impl=fast and impl=lib. Besides ns/op they
// report cpu-ns/callback, the process's CPU time per callback (garbage
// collection included), which unlike the wall time hardly moves when other
// processes compete for the machine's cores:
//
//	go test -run '^$' -bench Gain -benchmem -cpu 1 -count 8 ./engine/imcallback/ | benchstat -col /impl -
//
// docs/performance.md ("Hand-written fast paths") has the figures.

// BenchmarkGainDecode: Decode (decodeFast, then the events) against
// oldDecode (json.Unmarshal, then the same events) on the load benchmark's
// body, once per callback.
func BenchmarkGainDecode(b *testing.B) {
	data := callbacks.Must("friend_add.json")
	fast, lib := newCB(imevent.CmdFriendAdd), newCB(imevent.CmdFriendAdd)
	if err := Decode(data, fast); err != nil {
		b.Fatal(err)
	}
	if err := oldDecode(data, lib); err != nil {
		b.Fatal(err)
	}
	var probe body
	if !probe.decodeFast(data) || len(fast.Events) != 3 || !reflect.DeepEqual(fast, lib) {
		b.Fatalf("the fast path does not take the sample, or the two differ:\n%+v\n%+v", fast, lib)
	}
	b.Run("impl=fast", func(b *testing.B) {
		benchcpu.Loop(b, 1, func() {
			if err := Decode(data, newCB(imevent.CmdFriendAdd)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("impl=lib", func(b *testing.B) {
		benchcpu.Loop(b, 1, func() {
			if err := oldDecode(data, newCB(imevent.CmdFriendAdd)); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkGainEventJSON: the three events of the load benchmark's
// callback encoded for their jobs, by imevent.AppendEventJSON into one reused
// buffer as the engine does, against json.Marshal of each.
func BenchmarkGainEventJSON(b *testing.B) {
	cb := newCB(imevent.CmdFriendAdd)
	if err := Decode(callbacks.Must("friend_add.json"), cb); err != nil {
		b.Fatal(err)
	}
	evs := cb.Events
	if len(evs) != 3 {
		b.Fatalf("%d events, want 3", len(evs))
	}
	var buf []byte
	for i := range evs {
		want, err := json.Marshal(&evs[i])
		if err != nil {
			b.Fatal(err)
		}
		if got := imevent.AppendEventJSON(buf[:0], &evs[i]); !bytes.Equal(got, want) {
			b.Fatalf("event %d: imevent.AppendEventJSON %s, json.Marshal %s", i, got, want)
		}
	}
	b.Run("impl=fast", func(b *testing.B) {
		benchcpu.Loop(b, 1, func() {
			buf = buf[:0]
			for i := range evs {
				buf = imevent.AppendEventJSON(buf, &evs[i])
			}
		})
	})
	var sink []byte
	b.Run("impl=lib", func(b *testing.B) {
		benchcpu.Loop(b, 1, func() {
			for i := range evs {
				var err error
				if sink, err = json.Marshal(&evs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	_ = sink
}
