package imcallback

import (
	"encoding/json"
	"strconv"
)

// AppendEventJSON appends the event as encoding/json would marshal it,
// byte for byte (TestAppendEventJSONIsMarshal holds it to that). Every
// queued job carries its event, and reflection-based marshalling of the
// 22 fields was a measurable share of a callback's CPU.
func AppendEventJSON(b []byte, e *Event) []byte {
	b = append(b, `{"CallbackCommand":`...)
	b = appendJSONString(b, e.CallbackCommand)
	b = append(b, `,"SdkAppid":`...)
	b = strconv.AppendInt(b, int64(e.SdkAppid), 10)
	b = append(b, `,"ClientIP":`...)
	b = appendJSONString(b, e.ClientIP)
	b = append(b, `,"OptPlatform":`...)
	b = appendJSONString(b, e.OptPlatform)
	b = append(b, `,"EventTime":`...)
	b = strconv.AppendInt(b, int64(e.EventTime), 10)
	b = append(b, `,"From_Account":`...)
	b = appendJSONString(b, e.From_Account)
	b = append(b, `,"To_Account":`...)
	b = appendJSONString(b, e.To_Account)
	b = append(b, `,"Initiator_Account":`...)
	b = appendJSONString(b, e.Initiator_Account)
	b = append(b, `,"ClientCmd":`...)
	b = appendJSONString(b, e.ClientCmd)
	b = append(b, `,"Admin_Account":`...)
	b = appendJSONString(b, e.Admin_Account)
	b = append(b, `,"ForceFlag":`...)
	b = strconv.AppendInt(b, int64(e.ForceFlag), 10)
	b = append(b, `,"Requester_Account":`...)
	b = appendJSONString(b, e.Requester_Account)
	b = append(b, `,"Remark":`...)
	b = appendJSONString(b, e.Remark)
	b = append(b, `,"GroupName":`...)
	b = appendJSONString(b, e.GroupName)
	b = append(b, `,"AddSource":`...)
	b = appendJSONString(b, e.AddSource)
	b = append(b, `,"AddWording":`...)
	b = appendJSONString(b, e.AddWording)
	b = append(b, `,"AddType":`...)
	b = appendJSONString(b, e.AddType)
	b = append(b, `,"ForceAddFlags":`...)
	b = strconv.AppendInt(b, int64(e.ForceAddFlags), 10)
	b = append(b, `,"TagName":`...)
	b = appendJSONString(b, e.TagName)
	b = append(b, `,"ResponseAction":`...)
	b = appendJSONString(b, e.ResponseAction)
	b = append(b, `,"PairIndex":`...)
	b = strconv.AppendInt(b, int64(e.PairIndex), 10)
	b = append(b, `,"PairCount":`...)
	b = strconv.AppendInt(b, int64(e.PairCount), 10)
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does. Account ids and the
// other fields are almost always plain ASCII, which is copied as is; any
// string needing an escape (quotes, control bytes, HTML characters,
// non-ASCII with its U+2028/invalid UTF-8 rules) goes through
// encoding/json itself rather than a second copy of its escaping rules.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // a string always marshals; keep the output valid regardless
				return append(b, `""`...)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
