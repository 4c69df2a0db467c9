package record

import (
	"strconv"

	"github.com/friendflow/friendflow/rules/imevent"
)

// appendEventCompact appends e as appendCompact(imevent.AppendEventJSON(e))
// would, in one pass: its members in declaration order, without the empty
// ones ("" and 0), which are most of a typical event and decode to the
// same event. Writing them to drop them again was half of what Record
// cost the reply path. TestEventCompactIsCompact holds it to the two-pass
// form, field for field.
func appendEventCompact(b []byte, e *imevent.Event) []byte {
	start := len(b)
	b = append(b, '{')
	b = appendStrMember(b, start, `"CallbackCommand":`, e.CallbackCommand)
	b = appendIntMember(b, start, `"SdkAppid":`, e.SdkAppid)
	b = appendStrMember(b, start, `"ClientIP":`, e.ClientIP)
	b = appendStrMember(b, start, `"OptPlatform":`, e.OptPlatform)
	b = appendIntMember(b, start, `"EventTime":`, e.EventTime)
	b = appendStrMember(b, start, `"From_Account":`, e.From_Account)
	b = appendStrMember(b, start, `"To_Account":`, e.To_Account)
	b = appendStrMember(b, start, `"Initiator_Account":`, e.Initiator_Account)
	b = appendStrMember(b, start, `"ClientCmd":`, e.ClientCmd)
	b = appendStrMember(b, start, `"Admin_Account":`, e.Admin_Account)
	b = appendIntMember(b, start, `"ForceFlag":`, e.ForceFlag)
	b = appendStrMember(b, start, `"Requester_Account":`, e.Requester_Account)
	b = appendStrMember(b, start, `"Remark":`, e.Remark)
	b = appendStrMember(b, start, `"GroupName":`, e.GroupName)
	b = appendStrMember(b, start, `"AddSource":`, e.AddSource)
	b = appendStrMember(b, start, `"AddWording":`, e.AddWording)
	b = appendStrMember(b, start, `"AddType":`, e.AddType)
	b = appendIntMember(b, start, `"ForceAddFlags":`, e.ForceAddFlags)
	b = appendStrMember(b, start, `"TagName":`, e.TagName)
	b = appendStrMember(b, start, `"ResponseAction":`, e.ResponseAction)
	b = appendIntMember(b, start, `"PairIndex":`, e.PairIndex)
	b = appendIntMember(b, start, `"PairCount":`, e.PairCount)
	return append(b, '}')
}

// appendStrMember appends "key":v unless v is empty, after a comma unless
// it is the first member of the object that starts at start.
func appendStrMember(b []byte, start int, key, v string) []byte {
	if v == "" {
		return b
	}
	if len(b) > start+1 {
		b = append(b, ',')
	}
	b = append(b, key...)
	return imevent.AppendJSONString(b, v)
}

// appendIntMember is appendStrMember for an integer member.
func appendIntMember(b []byte, start int, key string, v int) []byte {
	if v == 0 {
		return b
	}
	if len(b) > start+1 {
		b = append(b, ',')
	}
	b = append(b, key...)
	return strconv.AppendInt(b, int64(v), 10)
}
