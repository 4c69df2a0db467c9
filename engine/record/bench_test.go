package record

import (
	"testing"
	"time"

	"github.com/friendflow/friendflow/bench/benchcpu"

	"github.com/friendflow/friendflow/engine/imcallback"
)

// BenchmarkRecord is the hot-path cost of recording one event of a typical
// callback (one pair, two rules matched, one job), per event (cpu-ns/callback: the callback has one event).
func BenchmarkRecord(b *testing.B) {
	set := loadSet(b, testRules)
	r := New(DefaultSize)
	cb := friendAdd(imcallback.NewID(), "friend_response", "user_0001", "user_0002")
	cb.Events[0].ClientIP, cb.Events[0].OptPlatform, cb.Events[0].EventTime = "10.1.2.3", "Android", 1700000000000
	matches, jobs := handle(set, cb)
	cb.ReceivedAt = time.Now()
	benchcpu.Loop(b, 1, func() { r.Record(set, cb, matches, nil, jobs, nil) })
}
