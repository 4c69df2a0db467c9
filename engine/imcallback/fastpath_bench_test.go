package imcallback

import (
	"bytes"
	"encoding/json"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
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

// cpuTime is the CPU time the process has used, all threads.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gainLoop runs op, one callback's worth, in b.Loop and reports the CPU
// time per callback.
func gainLoop(b *testing.B, op func()) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/callback")
}

// BenchmarkGainDecode: Decode (decodeFast, then the events) against
// oldDecode (json.Unmarshal, then the same events) on the load benchmark's
// body, once per callback.
func BenchmarkGainDecode(b *testing.B) {
	data := callbacks.Must("friend_add.json")
	fast, lib := newCB(CmdFriendAdd), newCB(CmdFriendAdd)
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
		gainLoop(b, func() {
			if err := Decode(data, newCB(CmdFriendAdd)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("impl=lib", func(b *testing.B) {
		gainLoop(b, func() {
			if err := oldDecode(data, newCB(CmdFriendAdd)); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkGainEventJSON: the three events of the load benchmark's
// callback encoded for their jobs, by AppendEventJSON into one reused
// buffer as the engine does, against json.Marshal of each.
func BenchmarkGainEventJSON(b *testing.B) {
	cb := newCB(CmdFriendAdd)
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
		if got := AppendEventJSON(buf[:0], &evs[i]); !bytes.Equal(got, want) {
			b.Fatalf("event %d: AppendEventJSON %s, json.Marshal %s", i, got, want)
		}
	}
	b.Run("impl=fast", func(b *testing.B) {
		gainLoop(b, func() {
			buf = buf[:0]
			for i := range evs {
				buf = AppendEventJSON(buf, &evs[i])
			}
		})
	})
	var sink []byte
	b.Run("impl=lib", func(b *testing.B) {
		gainLoop(b, func() {
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
