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

// EventID is the stable id of an event, the one every idempotency key of
// its jobs derives from (DeliveryID, and through it IM's MsgRandom and
// MsgSeq): a hash of the event's whole content as the engine stores it with
// each job (imevent's canonical JSON: the command, SdkAppid, the pair, its
// place in the callback, EventTime and every other field). Tencent's
// friend callbacks carry no event id
// (https://www.tencentcloud.com/document/product/1047/34354 lists the
// fields), so content is all there is: every copy of a callback (a replay,
// a retry after a FAIL reply, the same body posted again) gives each event
// the same id, and two events that differ in any field (another EventTime,
// another AddType, another place in the callback) get different ids. Two
// events alike in every field cannot be told from a replay by anyone.
// Empty for an event that is not JSON.
func EventID(event json.RawMessage) string {
	if len(event) == 0 || !json.Valid(event) {
		return ""
	}
	h := sha256.Sum256(event)
	return hex.EncodeToString(h[:16])
}

// DeliveryID is the job's idempotency key, the id a receiver of the job
// sees (webhook's X-Friendflow-Delivery) and the one IM's MsgRandom and
// MsgSeq derive from: the event's EventID, the rule and the action's
// index, so every attempt of the job, and every copy of its callback,
// carries the same id, and a receiver can drop the duplicates. A job
// without a readable event (none is ever queued so) has its job id
// instead, unique per callback received.
func (j Job) DeliveryID() string {
	ev := EventID(j.Event)
	if ev == "" || !knownTime(j.Event) {
		return j.ID
	}
	action := j.ID[strings.LastIndexByte(j.ID, '-')+1:]
	h := sha256.New()
	for _, s := range [...]string{ev, j.Rule, action} {
		// Length-prefixed, so that no two different tuples hash alike.
		h.Write(strconv.AppendInt(nil, int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// knownTime reports whether event has an EventTime: the engine always
// sets one (the body's, else RequestTime, else the receive time), and an
// event without one cannot be told from a later one about the same pair.
func knownTime(event json.RawMessage) bool {
	var ev struct{ EventTime json.RawMessage }
	if json.Unmarshal(event, &ev) != nil {
		return false
	}
	s := string(ev.EventTime)
	return s != "" && s != "null" && s != "0"
}
