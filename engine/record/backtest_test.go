package record

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules/imevent"
)

// candidateRules changes testRules: greet now needs an accepted request
// from alice's side and says something else, watch goes live, deny-loans
// also denies "crypto", and a new rule appears.
const candidateRules = `rules:
  - name: greet
    when: ClientCmd == "friend_response" && From_Account != "carol"
    actions:
      - webhook:
          url: https://crm.example/hook2
          secret: hunter2-webhook-secret
          body: { who: "${ From_Account }" }
  - name: watch
    actions:
      - log: { message: "saw ${ To_Account }" }
  - name: fragile
    when: ClientCmd in ["1", "x"] && int(ClientCmd) > 0
    actions:
      - log: { message: never }
  - name: deny-loans
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan" || AddWording contains "crypto"
    actions:
      - deny: { code: 38001, reason: spam }
  - name: count-deletes
    on: [Sns.CallbackFriendDelete]
    actions:
      - log: { message: "bye" }
`

func TestBacktestDiff(t *testing.T) {
	set := loadSet(t, testRules)
	r, _ := newLog(t, 100)
	record(r, set, friendAdd("c1", "friend_response", "alice", "bob"))
	record(r, set, friendAdd("c2", "friend_response", "carol", "dave"))
	record(r, set, friendAdd("c3", "friend_add", "erin", "frank"))
	for _, w := range []string{"cheap loan", "buy crypto", "hi"} {
		cb := &imcallback.Callback{ID: "p" + w, Command: imevent.CmdPrevFriendAdd, Events: []imevent.Event{
			{CallbackCommand: imevent.CmdPrevFriendAdd, From_Account: "ivan", To_Account: w, AddWording: w}}}
		record(r, set, cb)
	}
	flush(t, r)
	// The JSONL round trip is what `events export | backtest --events` does.
	var buf bytes.Buffer
	var all []Event
	if err := r.Export(context.Background(), Filter{}, func(e *Event) error { all = append(all, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONL(&buf, all); err != nil {
		t.Fatal(err)
	}
	events, err := ReadJSONL(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// Numbered 1…6 for the expectations below: stored ids count
	// messages and lines (codec.go).
	for i := range events {
		events[i].ID = uint64(i + 1)
	}

	same, err := Backtest(set, events)
	if err != nil || same.Changed || same.Events != 6 {
		t.Fatalf("the recorded rules against themselves: %+v %v", same, err)
	}
	d, err := Backtest(loadSet(t, candidateRules), events)
	if err != nil || !d.Changed {
		t.Fatalf("%+v %v", d, err)
	}
	got := map[string]string{}
	for _, rd := range d.Rules {
		got[rd.Rule] = fmt.Sprintf("new %v gone %v same %d changed %d", rd.NewlyMatched, rd.NoLongerMatched, rd.Unchanged, rd.ActionsChanged)
	}
	want := map[string]string{
		"greet":         "new [] gone [2] same 0 changed 1",
		"watch":         "new [] gone [] same 0 changed 3",
		"fragile":       "new [] gone [] same 0 changed 0",
		"deny-loans":    "new [5] gone [] same 1 changed 0",
		"count-deletes": "new [] gone [] same 0 changed 0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if g := d.Rules[0].Changes; len(g) != 1 || g[0].Event != 1 || g[0].Old[0].Params["url"] != "https://crm.example/hook" ||
		g[0].New[0].Params["url"] != "https://crm.example/hook2" || g[0].New[0].Params["secret"] != "<redacted>" {
		t.Errorf("greet's change: %+v", g)
	}
	if len(d.Decisions) != 1 || d.Decisions[0].Event != 5 || d.Decisions[0].Old.Deny || !d.Decisions[0].New.Deny || d.Decisions[0].New.Code != 38001 {
		t.Errorf("decision flips: %+v", d.Decisions)
	}
	if _, err := ReadJSONL([]byte("{\"id\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad JSONL: %v", err)
	}
}
