package record

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules/imevent"

	"github.com/friendflow/friendflow/engine/imcallback"
)

// BenchmarkRecord is the cost of recording one event of a typical
// callback (one pair, two rules matched, one job) and its job's outcome
// (done, in its trace): cpu-ns/callback is the
// process's CPU time per callback, the writer's packing and publishing and
// the embedded store's writing included: the loop waits for the writer
// every 2 048 events, about what 40 ms of bench/load.sh's traffic records
// (17 000 callbacks/s of 3 events), so the writer works on batches of the
// size it has under load. ns/op is mostly that wait; dropped/op must be 0.
func BenchmarkRecord(b *testing.B) {
	set := loadSet(b, testRules)
	q := openQueue(b, b.TempDir(), DefaultSize)
	dropped := 0
	l := New(q, Options{Dropped: func(n int) { dropped += n }})
	defer func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	}()
	cb := friendAdd(imcallback.NewID(), "friend_response", "user_0001", "user_0002")
	cb.Events[0].ClientIP, cb.Events[0].OptPlatform, cb.Events[0].EventTime = "10.1.2.3", "Android", 1700000000000
	matches, errs, jobs := handle(set, cb)
	cb.ReceivedAt = time.Now()
	hooks := Hooks(queue.Hooks{}, func() *Log { return l })
	done := jobs[0]
	done.Attempt = 1
	b.ReportAllocs()
	start := benchcpu.Time(b)
	for i := 0; b.Loop(); i++ {
		l.Record(set, cb, matches, errs, nil, jobs, nil, nil)
		hooks.JobFinished(&done, queue.OutcomeDone, nil, 0)
		if i%2048 == 2047 {
			l.Flush(context.Background())
		}
	}
	l.Flush(context.Background())
	b.ReportMetric(float64(benchcpu.Time(b)-start)/float64(b.N), "cpu-ns/callback")
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
}

// BenchmarkRecordReplyPath is what Record costs the reply path alone, per
// event: encoding the event into the writer's buffer. The writer never
// runs meanwhile (it lingers an hour, and a whole message of events is
// never left waiting: the buffer is emptied every idsPerMsg-1 events, as
// the writer takes it).
func BenchmarkRecordReplyPath(b *testing.B) {
	set := loadSet(b, testRules)
	q := openQueue(b, b.TempDir(), DefaultSize)
	l := New(q, Options{Linger: time.Hour})
	defer func() {
		l.Close()
		_ = q.Stop(5 * time.Second)
	}()
	l.Record(set, friendAdd("first", "friend_response", "a", "b"), nil, nil, nil, nil, nil, nil)
	l.Flush(context.Background()) // the writer now lingers
	cb := friendAdd(imcallback.NewID(), "friend_response", "user_0001", "user_0002")
	cb.Events[0].ClientIP, cb.Events[0].OptPlatform, cb.Events[0].EventTime = "10.1.2.3", "Android", 1700000000000
	matches, errs, jobs := handle(set, cb)
	cb.ReceivedAt = time.Now()
	i := 0
	benchcpu.Loop(b, 1, func() {
		l.Record(set, cb, matches, errs, nil, jobs, nil, nil)
		if i++; i%(idsPerMsg-1) == 0 { // below a whole message, which would wake it
			l.mu.Lock()
			l.lines, l.events = l.lines[:0], 0
			l.mu.Unlock()
		}
	})
}

// manyRules is n rules in the shapes operators write: an account check,
// a ClientCmd check with a rendered webhook, a Prev deny by wording.
func manyRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "  - name: vip-%d\n    when: From_Account == \"user_%d\"\n    actions:\n      - log: { message: \"vip ${ To_Account }\" }\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  - name: hook-%d\n    when: ClientCmd == \"friend_response\" && To_Account endsWith \"%d\"\n    actions:\n      - webhook: { url: \"https://crm.example/%d\", body: { who: \"${ From_Account }\" } }\n", i, i%10, i)
		default:
			fmt.Fprintf(&b, "  - name: deny-%d\n    on: [Sns.CallbackPrevFriendAdd]\n    when: AddWording contains \"spam%d\"\n    actions:\n      - deny: { code: 38001, reason: spam }\n", i, i)
		}
	}
	return b.String()
}

// BenchmarkBacktest is POST /backtest's work: the recorded outcomes of
// 10 000 events derived again (Log.Export) and 100 candidate rules run
// over them, read from the store a batch at a time. One op is the whole
// backtest.
func BenchmarkBacktest(b *testing.B) {
	old, candidate := loadSet(b, manyRules(100)), loadSet(b, strings.ReplaceAll(manyRules(100), "spam", "junk"))
	r, _ := newLog(b, DefaultSize)
	for i := range DefaultSize {
		id := strconv.Itoa(i)
		var cb *imcallback.Callback
		if i%4 == 0 {
			cb = &imcallback.Callback{ID: "p" + id, Command: imevent.CmdPrevFriendAdd, Events: []imevent.Event{{
				CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "user_" + strconv.Itoa(i%150), To_Account: "user_" + id,
				AddWording: "spam" + strconv.Itoa(i%120)}}}
		} else {
			cb = friendAdd("c"+id, "friend_response", "user_"+strconv.Itoa(i%150), "user_"+id)
		}
		record(r, old, cb)
	}
	flush(b, r)
	start := benchcpu.Time(b)
	for b.Loop() {
		bt := NewBacktest(candidate)
		if err := r.Export(context.Background(), Filter{}, bt.Add); err != nil {
			b.Fatal(err)
		}
		if d := bt.Diff(); !d.Changed || d.Events != DefaultSize {
			b.Fatal(d)
		}
	}
	b.ReportMetric(float64(benchcpu.Time(b)-start)/float64(b.N), "cpu-ns/op")
}
