package imevent

import "encoding/json"

// AppendEventJSON, which writes an event's fields in order, is generated
// from the field table into fields_gen.go; the quoting it calls is here.

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

// AppendJSONString quotes s as encoding/json does (see appendJSONString),
// for other hand-written encoders of recorded data.
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s) }
