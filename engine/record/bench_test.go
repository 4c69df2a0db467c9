package record

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/rules/imevent"

	"github.com/friendflow/friendflow/engine/imcallback"
)

// BenchmarkRecord is the hot-path cost of recording one event of a typical
// callback (one pair, two rules matched, one job), per event (cpu-ns/callback: the callback has one event).
func BenchmarkRecord(b *testing.B) {
	set := loadSet(b, testRules)
	r := New(DefaultSize)
	cb := friendAdd(imcallback.NewID(), "friend_response", "user_0001", "user_0002")
	cb.Events[0].ClientIP, cb.Events[0].OptPlatform, cb.Events[0].EventTime = "10.1.2.3", "Android", 1700000000000
	matches, errs, jobs := handle(set, cb)
	cb.ReceivedAt = time.Now()
	benchcpu.Loop(b, 1, func() { r.Record(set, cb, matches, errs, nil, jobs, nil, nil) })
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
// 10 000 events derived again (Ring.Export) and 100 candidate rules run
// over them. One op is the whole backtest.
func BenchmarkBacktest(b *testing.B) {
	old, candidate := loadSet(b, manyRules(100)), loadSet(b, strings.ReplaceAll(manyRules(100), "spam", "junk"))
	r := New(DefaultSize)
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
	start := benchcpu.Time(b)
	for b.Loop() {
		d, err := Backtest(candidate, r.Export())
		if err != nil || !d.Changed || d.Events != DefaultSize {
			b.Fatal(d, err)
		}
	}
	b.ReportMetric(float64(benchcpu.Time(b)-start)/float64(b.N), "cpu-ns/op")
}
