// Package benchcpu is support for the Gain benchmarks, which measure each
// hand-written fast path against the library code it replaces
// (docs/performance.md, "Hand-written fast paths"). Besides the wall time
// they report the process's CPU time per callback, garbage collection
// included, which unlike the wall time hardly moves when other processes
// compete for the machine's cores.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Time is the CPU time the process has used so far, all threads, user and
// system.
func Time(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Loop runs op, the work of n callbacks, in b.Loop with allocations
// reported, and reports the process's CPU time per callback as
// cpu-ns/callback.
func Loop(b *testing.B, n int, op func()) {
	b.ReportAllocs()
	start := Time(b)
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(Time(b)-start)/float64(b.N*n), "cpu-ns/callback")
}
