package record

import (
	"context"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

const countingRules = `counters:
  - name: by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 1h
rules:
  - name: deny-floods
    on: [Sns.CallbackPrevFriendAdd]
    when: count("by_sender", From_Account) > 2
    actions:
      - deny: { code: 38002, reason: "slow down" }
`

// A rule set with counters against its own recording changes nothing:
// the counts count() read are not recorded, so what was recorded (the
// matched rules and the answer Tencent got) stands for the old side.
func TestBacktestCountersAgainstThemselves(t *testing.T) {
	set := loadSet(t, countingRules)
	r, _ := newLog(t, 100)
	counters := rules.NewMemCounters()
	for i := range 4 {
		ev := imevent.Event{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "eve", To_Account: "bob"}
		cb := &imcallback.Callback{ID: "p" + string(rune('0'+i)), Command: imevent.CmdPrevFriendAdd, Events: []imevent.Event{ev}}
		counts := set.Count(context.Background(), &cb.Events[0], counters, time.Now())
		m, errs := set.MatchCounts(&cb.Events[0], nil, counts)
		if errs != nil {
			t.Fatalf("event %d: %v", i, errs)
		}
		d := rules.DecisionOf(m)
		item := imcallback.ResultItem{To_Account: "bob"}
		if d.Deny {
			item.ResultCode, item.ResultInfo = d.Code, d.Reason
		}
		r.Record(set, cb, [][]rules.Match{m}, nil, []imcallback.ResultItem{item}, nil, nil, nil)
	}
	flush(t, r)
	var events []Event
	if err := r.Export(context.Background(), Filter{}, func(e *Event) error { events = append(events, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 {
		t.Fatalf("%d events recorded, want 4", len(events))
	}
	d, err := Backtest(set, events)
	if err != nil || d.Changed || len(d.Decisions) != 0 {
		t.Fatalf("the recorded rules against themselves: changed %v, flips %+v, rules %+v, %v", d.Changed, d.Decisions, d.Rules, err)
	}
}
