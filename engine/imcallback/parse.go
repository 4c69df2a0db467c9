package imcallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/friendflow/friendflow/rules/imevent"
)

// ParseEvents reads what a user hands explain: a callback body (with a
// PairList, FriendItem, … array: imevent.Lists) becomes its events, exactly
// as the receiver would decode it; anything else is taken as one event
// written with the event's field names. command, when set, names the
// command (otherwise the body's CallbackCommand, or Sns.CallbackFriendAdd).
func ParseEvents(data []byte, command string, sdkappid int) ([]imevent.Event, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object: %w", err)
	}
	if command == "" {
		if raw, ok := probe["CallbackCommand"]; ok {
			_ = json.Unmarshal(raw, &command)
		}
	}
	if command == "" {
		command = imevent.CmdFriendAdd
	}
	if !imevent.IsCommand(command) {
		return nil, fmt.Errorf("unknown command %q (one of %v)", command, imevent.Commands)
	}
	if hasList(probe) {
		if _, ok := probe["CallbackCommand"]; !ok {
			probe["CallbackCommand"], _ = json.Marshal(command)
			data, _ = json.Marshal(probe)
		}
		cb := &Callback{Command: command, SdkAppid: sdkappid, ReceivedAt: time.Now()}
		if err := Decode(data, cb); err != nil {
			return nil, err
		}
		return cb.Events, nil
	}
	ev := imevent.Event{CallbackCommand: command, SdkAppid: sdkappid}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("reading the event: %w", err)
	}
	if ev.CallbackCommand != command {
		return nil, fmt.Errorf("the event's CallbackCommand %q differs from --command %q", ev.CallbackCommand, command)
	}
	if ev.EventTime == 0 {
		ev.EventTime = int(time.Now().UnixMilli())
	}
	if ev.PairCount == 0 {
		ev.PairCount = 1
	}
	return []imevent.Event{ev}, nil
}

// hasList reports whether the object holds one of the callbacks' lists as
// an array: it is then a callback body rather than one event. The array
// test tells FollowDelete's list of strings, named To_Account, from one
// event's To_Account string.
func hasList(probe map[string]json.RawMessage) bool {
	for _, name := range imevent.Lists {
		if raw, ok := probe[name]; ok && len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '[' {
			return true
		}
	}
	return false
}
