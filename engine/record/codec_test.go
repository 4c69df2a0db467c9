package record

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// fullEvent sets every field of an event, strings with characters JSON
// escapes, n varying them.
func fullEvent(n int) imevent.Event {
	var ev imevent.Event
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(`x"\` + strconv.Itoa(n+i) + "é<\n>")
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(int64(n + i + 1))
		}
	}
	return ev
}

// The stored event decodes to the event: empty members left out, every
// other one kept, whatever it holds.
func TestCompactEventDecodesTheSame(t *testing.T) {
	for _, ev := range []imevent.Event{
		fullEvent(0),
		fullEvent(7),
		{CallbackCommand: imevent.CmdFriendAdd, From_Account: "a", To_Account: "b"},
		{CallbackCommand: imevent.CmdPrevFriendAdd, AddWording: `","0":"`, PairCount: 0, EventTime: -1},
	} {
		raw := imevent.AppendEventJSON(nil, &ev)
		c := appendCompact(nil, raw)
		var got imevent.Event
		if err := json.Unmarshal(c, &got); err != nil || got != ev {
			t.Fatalf("compact %s\ndecodes to %+v, %v\nwant %+v", c, got, err, ev)
		}
		if len(c) > len(raw) {
			t.Fatalf("compact is longer: %s", c)
		}
	}
}

// The stored line of an event decodes to the Event it stands for.
func TestStoredEventIsEvent(t *testing.T) {
	ev := fullEvent(3)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	seen := queue.OnceSeen{At: time.Unix(1, 0).UTC(), CallbackID: "c0"}
	x := line{qcb: []byte(`"cb\u003c1\u003e"`), qhash: []byte(`"h"`), callbackID: "cb<1>", command: imevent.CmdPrevFriendAdd, storeErr: "full", received: at, ev: &ev,
		matches:  []rules.Match{{Rule: "r1"}, {Rule: "r2", Shadow: true}},
		errs:     []rules.RuleError{{Rule: "r3"}},
		decision: &imcallback.ResultItem{To_Account: "ignored", ResultCode: 38001, ResultInfo: "spam & co"},
		jobs:     []queue.Job{{Job: actions.Job{ID: "cb<1>-0-0-0", Rule: "r1", Action: "webhook"}}},
		skips:    []queue.OnceSkip{{Rule: "r1", Key: "k", Seen: seen}}}
	want := Event{CallbackID: "cb<1>", Received: at, Command: imevent.CmdPrevFriendAdd, From: ev.From_Account, To: ev.To_Account,
		RulesHash: "h", Matched: []string{"r1", "r2"}, Shadow: []string{"r2"}, Errors: []string{"r3"},
		Decision: &imcallback.ResultItem{To_Account: ev.To_Account, ResultCode: 38001, ResultInfo: "spam & co"}, StoreError: "full",
		OnceSkipped: []OnceSkip{{Rule: "r1", Key: "k", FirstSeen: seen.At, FirstCallback: "c0"}},
		Jobs:        []Job{{ID: "cb<1>-0-0-0", Rule: "r1", Action: "webhook", Outcome: JobQueued}}}
	b := appendLine(nil, &x)
	var got Event
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	decoded, err := got.Decode()
	if err != nil || decoded != ev {
		t.Fatalf("event %+v, %v", decoded, err)
	}
	got.Data = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stored\n%s\ndecodes to\n%+v\nwant\n%+v", b, got, want)
	}
	// Nothing matched, no jobs: null lists, as encoding/json writes nil.
	x = line{qcb: []byte(`""`), qhash: []byte(`""`), ev: &imevent.Event{}, received: at}
	var empty Event
	if err := json.Unmarshal(appendLine(nil, &x), &empty); err != nil || empty.Matched != nil || empty.Jobs != nil || empty.Decision != nil {
		t.Fatalf("empty: %+v %v", empty, err)
	}
}

// A packed message unpacks to what was packed; one packing would not
// shorten is stored as it is; earlier packed messages survive the buffer
// growing.
func TestPackUnpack(t *testing.T) {
	var lines []byte
	for i := range 300 {
		lines = append(lines, `{"callback_id":"4892fc9b98954f914d08fed20dec2b84","n":`+strconv.Itoa(i)+"}\n"...)
	}
	var buf []byte
	var at []int
	srcs := [][]byte{lines, []byte(`{"a":1}`), lines[:100]}
	for _, src := range srcs {
		var i int
		buf, i = pack(buf, src)
		at = append(at, i)
	}
	for k, src := range srcs {
		end := len(buf)
		if k+1 < len(at) {
			end = at[k+1]
		}
		stored := buf[at[k]:end]
		if k == 1 && string(stored) != string(src) {
			t.Fatalf("tiny message packed: %q", stored)
		}
		if k != 1 && (stored[0] != packedMark || len(stored) >= len(src)) {
			t.Fatalf("message %d not packed: %d bytes for %d", k, len(stored), len(src))
		}
		got, err := unpack(stored)
		if err != nil || string(got) != string(src) {
			t.Fatalf("message %d unpacks to %q, %v", k, got, err)
		}
	}
	if _, err := unpack([]byte{packedMark, 0xff, 0xff, 0xff, 0xff, 0x7f}); err == nil {
		t.Fatal("a message claiming 34 GB unpacked")
	}
}

// A job id is quoted as encoding/json quotes it, whether its callback id
// prefix is reused or not.
func TestAppendJobID(t *testing.T) {
	for _, c := range []struct{ id, cb string }{
		{"4892fc9b-0-1-2", "4892fc9b"},
		{"cb-0-<1>-\"é\n", "cb"},
		{"cb<1>-0-0-0", "cb<1>"},
		{"other-0-0-0", "cb"},
		{"cb", "cb"},
		{"", ""},
	} {
		want, _ := json.Marshal(c.id)
		qcb, _ := json.Marshal(c.cb)
		if got := appendJobID([]byte("x"), c.id, c.cb, qcb); string(got) != "x"+string(want) {
			t.Errorf("appendJobID(%q, %q) = %s, want x%s", c.id, c.cb, got, want)
		}
	}
}

// The one-pass compact event is the two-pass one, for events with every
// field set, with none, and with each field alone set: a field added to
// imevent.Event and not to appendEventCompact fails here.
func TestEventCompactIsCompact(t *testing.T) {
	events := []imevent.Event{fullEvent(0), fullEvent(9), {}}
	full := fullEvent(1)
	fv := reflect.ValueOf(full)
	for i := range fv.NumField() {
		var ev imevent.Event
		reflect.ValueOf(&ev).Elem().Field(i).Set(fv.Field(i))
		events = append(events, ev)
	}
	for _, ev := range events {
		want := appendCompact(nil, imevent.AppendEventJSON(nil, &ev))
		if got := appendEventCompact([]byte("x"), &ev); string(got) != "x"+string(want) {
			t.Fatalf("one pass\n%s\ntwo passes\nx%s", got, want)
		}
	}
}
