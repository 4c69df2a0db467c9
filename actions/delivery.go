package actions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// JobID is the id of a callback's job: the action-th action of the
// match-th rule that matched its event-th event. It is unique per job, as
// the queue requires, and ends in the action's index, which DeliveryID
// reads back.
func JobID(callbackID string, event, match, action int) string {
	return callbackID + "-" + strconv.Itoa(event) + "-" + strconv.Itoa(match) + "-" + strconv.Itoa(action)
}

// deliveryEvent is what identifies an event across copies of its callback:
// a replay by Tencent, a retry after a FAIL reply, the same body posted
// again.
type deliveryEvent struct {
	CallbackCommand string
	SdkAppid        json.RawMessage
	From_Account    string
	To_Account      string
	EventTime       json.RawMessage
}

// DeliveryID is the id a receiver of the job sees (webhook's
// X-Friendflow-Delivery): derived from the callback's content (command,
// SdkAppid, the pair, EventTime), the rule and the action's index, so every
// attempt of the job, and every copy of its callback, carries the same id
// and a receiver can drop the duplicates. An event without an EventTime
// cannot be told from a later one about the same pair, so its job's id is
// the job id instead (unique per callback received).
func (j Job) DeliveryID() string {
	var ev deliveryEvent
	if len(j.Event) == 0 || json.Unmarshal(j.Event, &ev) != nil || !knownTime(ev.EventTime) {
		return j.ID
	}
	action := j.ID[strings.LastIndexByte(j.ID, '-')+1:]
	h := sha256.New()
	for _, s := range [...]string{ev.CallbackCommand, string(ev.SdkAppid), ev.From_Account, ev.To_Account, string(ev.EventTime), j.Rule, action} {
		// Length-prefixed, so that no two different tuples hash alike.
		h.Write(strconv.AppendInt(nil, int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// knownTime: EventTime is absent, null or 0 when Tencent did not send one.
func knownTime(t json.RawMessage) bool {
	s := string(t)
	return s != "" && s != "null" && s != "0"
}
