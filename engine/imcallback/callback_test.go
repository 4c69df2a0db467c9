package imcallback

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

var received = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newCB(cmd string) *Callback {
	return &Callback{Command: cmd, SdkAppid: 1400000000, ClientIP: "127.0.0.1", OptPlatform: "RESTAPI", ReceivedAt: received}
}

func TestDecodeSamples(t *testing.T) {
	recv := int(received.UnixMilli())
	base := imevent.Event{SdkAppid: 1400000000, ClientIP: "127.0.0.1", OptPlatform: "RESTAPI", EventTime: recv}
	with := func(f func(e *imevent.Event)) imevent.Event { e := base; f(&e); return e }
	tests := []struct {
		file string
		cmd  string
		want []imevent.Event
	}{
		{"friend_add.json", imevent.CmdFriendAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "id", "id1", "id"
				e.ClientCmd, e.ForceFlag, e.PairIndex, e.PairCount = "friend_add", 1, 0, 3
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "id", "id2", "id"
				e.ClientCmd, e.ForceFlag, e.PairIndex, e.PairCount = "friend_add", 1, 1, 3
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "id", "id3", "id"
				e.ClientCmd, e.ForceFlag, e.PairIndex, e.PairCount = "friend_add", 1, 2, 3
			}),
		}},
		{"friend_add_response.json", imevent.CmdFriendAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "alice", "bob", "alice"
				e.ClientCmd, e.PairIndex, e.PairCount = "friend_response", 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "bob", "alice", "alice"
				e.ClientCmd, e.PairIndex, e.PairCount = "friend_response", 1, 2
			}),
		}},
		{"friend_add_forced_by_admin.json", imevent.CmdFriendAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.Initiator_Account = imevent.CmdFriendAdd, "user_42", "support_bot", "user_42"
				e.ClientCmd, e.Admin_Account, e.ForceFlag, e.PairCount = "friend_add", "administrator", 1, 1
			}),
		}},
		{"friend_delete.json", imevent.CmdFriendDelete, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdFriendDelete, "id", "id1", 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdFriendDelete, "id", "id2", 1, 2
			}),
		}},
		{"blacklist_add.json", imevent.CmdBlackListAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdBlackListAdd, "id", "id1", 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdBlackListAdd, "id", "id2", 1, 2
			}),
		}},
		{"blacklist_delete.json", imevent.CmdBlackListDelete, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdBlackListDelete, "id", "id1", 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex, e.PairCount = imevent.CmdBlackListDelete, "id", "id2", 1, 2
			}),
		}},
		{"prev_friend_add.json", imevent.CmdPrevFriendAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime = imevent.CmdPrevFriendAdd, 1631777344870
				e.Requester_Account, e.From_Account, e.To_Account = "id", "id", "id1"
				e.Remark, e.GroupName, e.AddSource, e.AddWording = "remark1", "group1", "AddSource_Type_Android", "this is id1!"
				e.AddType, e.PairIndex, e.PairCount = "Add_Type_Both", 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime = imevent.CmdPrevFriendAdd, 1631777344870
				e.Requester_Account, e.From_Account, e.To_Account = "id", "id", "id2"
				e.Remark, e.GroupName, e.AddSource, e.AddWording = "remark2", "group1", "AddSource_Type_Android", "this is id2!"
				e.AddType, e.PairIndex, e.PairCount = "Add_Type_Both", 1, 2
			}),
		}},
		{"prev_friend_response.json", imevent.CmdPrevFriendResponse, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime = imevent.CmdPrevFriendResponse, 1631777645424
				e.Requester_Account, e.From_Account, e.To_Account = "id", "id", "id1"
				e.Remark, e.TagName, e.ResponseAction = "remark1", "group1", "Response_Action_AgreeAndAdd"
				e.PairIndex, e.PairCount = 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime = imevent.CmdPrevFriendResponse, 1631777645424
				e.Requester_Account, e.From_Account, e.To_Account = "id", "id", "id2"
				e.Remark, e.TagName, e.ResponseAction = "remark2", "group2", "Response_Action_Reject"
				e.PairIndex, e.PairCount = 1, 2
			}),
		}},
		// The official samples of both follow callbacks (trtc.io/document/70355
		// and 70356): one event per followed or unfollowed account.
		{"follow_add.json", imevent.CmdFollowAdd, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime, e.From_Account, e.To_Account = imevent.CmdFollowAdd, 1702018343678, "UserID_001", "UserID_002"
				e.PairIndex, e.PairCount = 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime, e.From_Account, e.To_Account = imevent.CmdFollowAdd, 1702018343678, "UserID_001", "UserID_003"
				e.PairIndex, e.PairCount = 1, 2
			}),
		}},
		{"follow_delete.json", imevent.CmdFollowDelete, []imevent.Event{
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime, e.From_Account, e.To_Account = imevent.CmdFollowDelete, 1702018343678, "UserID_001", "UserID_002"
				e.PairIndex, e.PairCount = 0, 2
			}),
			with(func(e *imevent.Event) {
				e.CallbackCommand, e.EventTime, e.From_Account, e.To_Account = imevent.CmdFollowDelete, 1702018343678, "UserID_001", "UserID_003"
				e.PairIndex, e.PairCount = 1, 2
			}),
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			cb := newCB(tt.cmd)
			if err := Decode(callbacks.Must(tt.file), cb); err != nil {
				t.Fatal(err)
			}
			if len(cb.Events) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(cb.Events), len(tt.want))
			}
			for i := range tt.want {
				if cb.Events[i] != tt.want[i] {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, cb.Events[i], tt.want[i])
				}
			}
		})
	}
	// Every sample shipped must be covered here.
	for _, name := range callbacks.Names() {
		if !seen[name] {
			t.Errorf("sample %s has no expected events in this test", name)
		}
	}
}

func TestDecodeToleratesUnknownFields(t *testing.T) {
	body := `{"CallbackCommand":"Sns.CallbackFriendDelete","NewTopLevel":{"x":[1,2]},"EventTime":1700000000123,
		"PairList":[{"From_Account":"a","To_Account":"b","Unknown":true}]}`
	cb := newCB(imevent.CmdFriendDelete)
	if err := Decode([]byte(body), cb); err != nil {
		t.Fatal(err)
	}
	if len(cb.Events) != 1 || cb.Events[0].To_Account != "b" || cb.Events[0].EventTime != 1700000000123 {
		t.Fatalf("got %+v", cb.Events)
	}
}

func TestDecodeRejects(t *testing.T) {
	many := `{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[` +
		strings.TrimSuffix(strings.Repeat(`{"From_Account":"a","To_Account":"b"},`, DefaultMaxPairs+1), ",") + `]}`
	tests := []struct {
		name, cmd, body, reason, msg string
	}{
		{"not json", imevent.CmdFriendAdd, `{"CallbackCommand":`, ReasonMalformed, "malformed JSON"},
		{"wrong type", imevent.CmdFriendAdd, `{"CallbackCommand":"Sns.CallbackFriendAdd","ForceFlag":"yes","PairList":[{"From_Account":"a","To_Account":"b"}]}`, ReasonMalformed, "ForceFlag"},
		{"trailing data", imevent.CmdFriendDelete, `{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[{"From_Account":"a","To_Account":"b"}]} {}`, ReasonMalformed, "after top-level value"},
		{"command mismatch", imevent.CmdFriendAdd, `{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[{"From_Account":"a","To_Account":"b"}]}`, ReasonCommandMismatch, "differs"},
		{"empty pairs", imevent.CmdFriendAdd, `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[]}`, ReasonPairs, "PairList is empty"},
		{"missing pairs", imevent.CmdBlackListAdd, `{"CallbackCommand":"Sns.CallbackBlackListAdd"}`, ReasonPairs, "PairList is empty"},
		{"empty items", imevent.CmdPrevFriendAdd, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","FriendItem":[]}`, ReasonPairs, "FriendItem is empty"},
		{"empty response items", imevent.CmdPrevFriendResponse, `{"CallbackCommand":"Sns.CallbackPrevFriendResponse"}`, ReasonPairs, "ResponseFriendItem is empty"},
		{"too many pairs", imevent.CmdFriendDelete, many, ReasonPairs, "more than 6000"},
		{"no target", imevent.CmdFriendDelete, `{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[{"From_Account":"a"}]}`, ReasonPairs, "To_Account is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := newCB(tt.cmd)
			err := Decode([]byte(tt.body), cb)
			de, ok := err.(*DecodeError)
			if !ok {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if de.Reason != tt.reason || !strings.Contains(de.Msg, tt.msg) {
				t.Fatalf("got %s %q, want %s containing %q", de.Reason, de.Msg, tt.reason, tt.msg)
			}
			if cb.Events != nil {
				t.Fatalf("a rejected callback produced events: %+v", cb.Events)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range callbacks.Names() {
		f.Add(callbacks.Must(name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cmd := range imevent.Commands {
			cb := newCB(cmd)
			err := Decode(data, cb)
			if err != nil {
				if _, ok := err.(*DecodeError); !ok {
					t.Fatalf("error of type %T: %v", err, err)
				}
				if cb.Events != nil {
					t.Fatal("events despite an error")
				}
				continue
			}
			if n := len(cb.Events); n == 0 || n > DefaultMaxPairs {
				t.Fatalf("%d events accepted", n)
			}
			for i, e := range cb.Events {
				if e.CallbackCommand != cmd || e.PairIndex != i || e.PairCount != len(cb.Events) || e.To_Account == "" {
					t.Fatalf("inconsistent event %d: %+v", i, e)
				}
			}
		}
	})
}

// BenchmarkDecode decodes Tencent's sample body (body=tencent, which the
// fast path takes) and the same body with a field the fast path does not
// know (body=unknown-field: the cost of trying the fast path first, then
// json.Unmarshal).
func BenchmarkDecode(b *testing.B) {
	tencent := callbacks.Must("friend_add.json")
	for _, c := range []struct {
		body string
		data []byte
	}{
		{"tencent", tencent},
		{"unknown-field", bytes.Replace(tencent, []byte(`{`), []byte(`{"NewField":1,`), 1)},
	} {
		b.Run("body="+c.body, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				cb := newCB(imevent.CmdFriendAdd)
				if err := Decode(c.data, cb); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFollowDeleteListOfStrings: Follow.CallbackAfterFollowDelete's list is
// an array of strings (trtc.io/document/70356), not of objects: an empty
// string is refused by its index, an object in it is malformed, and
// ParseEvents tells one event's To_Account string from the body's array.
func TestFollowDeleteListOfStrings(t *testing.T) {
	for body, want := range map[string]string{
		`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","From_Account":"a","To_Account":["b",""]}`:             "Follow.CallbackAfterFollowDelete: To_Account[1] is empty",
		`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","From_Account":"a","To_Account":[]}`:                   "Follow.CallbackAfterFollowDelete: To_Account is empty",
		`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","From_Account":"a","To_Account":[{"To_Account":"b"}]}`: "malformed JSON: field To_Account: want string, got object",
		`{"CallbackCommand":"Follow.CallbackAfterFollowAdd","From_Account":"a","FollowList":[{"To_Account":"b"},{}]}`: "Follow.CallbackAfterFollowAdd: FollowList[1].To_Account is empty",
	} {
		var head struct{ CallbackCommand string }
		if err := json.Unmarshal([]byte(body), &head); err != nil {
			t.Fatal(err)
		}
		err := Decode([]byte(body), newCB(head.CallbackCommand))
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", body, err, want)
		}
	}

	events, err := ParseEvents([]byte(`{"From_Account":"a","To_Account":"b"}`), imevent.CmdFollowDelete, 1400000000)
	if err != nil || len(events) != 1 || events[0].To_Account != "b" || events[0].From_Account != "a" {
		t.Fatalf("one event: %+v, %v", events, err)
	}
	events, err = ParseEvents([]byte(`{"From_Account":"a","To_Account":["b","c"]}`), imevent.CmdFollowDelete, 1400000000)
	if err != nil || len(events) != 2 || events[1].To_Account != "c" || events[1].PairCount != 2 {
		t.Fatalf("a body: %+v, %v", events, err)
	}
}
