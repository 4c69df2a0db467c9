package imtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"unicode/utf8"
)

// openim/sendmsg: the body checks and the delivery
// (https://cloud.tencent.com/document/product/269/2282).

// decode parses JSON keeping numbers as json.Number, so integer fields can
// be told from floats and strings.
func decode(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// isSendmsgField reports the request fields of openim/sendmsg that
// friendflow may send; anything else is a typo.
func isSendmsgField(k string) bool {
	switch k {
	case "SyncOtherMachine", "From_Account", "To_Account", "MsgLifeTime", "MsgSeq", "MsgRandom",
		"MsgTimeStamp", "ForbidCallbackControl", "SendMsgControl", "MsgBody", "CloudCustomData", "OfflinePushInfo":
		return true
	}
	return false
}

// checkSendMsg reports every field of a sendmsg body that is not as the
// API describes it (https://www.tencentcloud.com/document/product/1047/34919);
// false means the body is unusable.
func (s *Server) checkSendMsg(m map[string]any) bool {
	ok := true
	bad := func(format string, a ...any) {
		s.violate("sendmsg: "+format, a...)
		ok = false
	}
	for k := range m {
		if !isSendmsgField(k) {
			bad("unknown field %q", k)
		}
	}
	checkAccounts(m, bad)
	checkNumbers(m, bad)
	s.checkStrings(m, "ForbidCallbackControl", []string{"ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"}, bad)
	s.checkStrings(m, "SendMsgControl", []string{"NoUnread", "NoLastMsg", "WithMuteNotifications"}, bad)
	if v, present := m["CloudCustomData"]; present {
		if _, isStr := v.(string); !isStr {
			bad("CloudCustomData = %#v, want a string", v)
		}
	}
	if v, present := m["OfflinePushInfo"]; present {
		checkPush(v, bad)
	}
	checkMsgBody(m["MsgBody"], bad)
	return ok
}

// checkAccounts: To_Account is required, From_Account optional (the
// admin sends); neither may be empty.
func checkAccounts(m map[string]any, bad func(string, ...any)) {
	if v, present := m["To_Account"]; !present {
		bad("To_Account missing")
	} else if str, isStr := v.(string); !isStr || str == "" {
		bad("To_Account = %#v, want a non-empty string", v)
	}
	if v, present := m["From_Account"]; present {
		if str, isStr := v.(string); !isStr || str == "" {
			bad("From_Account = %#v, want a non-empty string (or absent for the admin)", v)
		}
	}
}

// sendmsgNumbers are the integer fields of sendmsg.
var sendmsgNumbers = []struct {
	name     string
	required bool
	want     string
	valid    func(uint32) bool // nil: any 32-bit value
}{
	{"MsgRandom", true, "an integer in 0..4294967295", nil},
	{"MsgSeq", false, "an integer in 0..4294967295", nil},
	{"MsgTimeStamp", false, "Unix seconds", nil},
	{"SyncOtherMachine", false, "1 or 2", func(n uint32) bool { return n == 1 || n == 2 }},
	{"MsgLifeTime", false, "an integer number of seconds", nil},
}

func checkNumbers(m map[string]any, bad func(string, ...any)) {
	for _, f := range sendmsgNumbers {
		v, present := m[f.name]
		if !present {
			if f.required {
				bad("%s missing", f.name)
			}
			continue
		}
		if n, isInt := uint32Of(v); !isInt || f.valid != nil && !f.valid(n) {
			bad("%s = %#v, want %s", f.name, v, f.want)
		}
	}
}

// checkMsgBody checks the message elements: at least one, each a text or
// custom element, at most one custom.
func checkMsgBody(v any, bad func(string, ...any)) {
	body, isList := v.([]any)
	if !isList || len(body) == 0 {
		bad("MsgBody = %#v, want a non-empty array", v)
		return
	}
	customs := 0
	for i, e := range body {
		if checkMsgElem(i, e, bad) == "TIMCustomElem" {
			customs++
		}
	}
	if customs > 1 {
		bad("%d TIMCustomElem in one message, IM allows one", customs)
	}
}

// checkMsgElem checks MsgBody[i] and returns its MsgType.
func checkMsgElem(i int, e any, bad func(string, ...any)) string {
	elem, isObj := e.(map[string]any)
	if !isObj || len(elem) != 2 {
		bad("MsgBody[%d] = %#v, want {MsgType, MsgContent}", i, e)
		return ""
	}
	typ, _ := elem["MsgType"].(string)
	content, isObj := elem["MsgContent"].(map[string]any)
	if !isObj {
		bad("MsgBody[%d].MsgContent = %#v, want an object", i, elem["MsgContent"])
		return ""
	}
	where := fmt.Sprintf("MsgBody[%d].MsgContent", i)
	switch typ {
	case "TIMTextElem":
		checkObject(content, where, []string{"Text"}, []string{"Text"}, bad)
	case "TIMCustomElem":
		checkObject(content, where, []string{"Data", "Desc", "Ext", "Sound"}, nil, bad)
	default:
		bad("MsgBody[%d].MsgType = %#v, want TIMTextElem or TIMCustomElem", i, elem["MsgType"])
	}
	return typ
}

func (s *Server) checkStrings(m map[string]any, field string, allowed []string, bad func(string, ...any)) {
	v, present := m[field]
	if !present {
		return
	}
	list, isList := v.([]any)
	if !isList || len(list) == 0 {
		bad("%s = %#v, want a non-empty array of strings", field, v)
		return
	}
	for _, x := range list {
		if str, isStr := x.(string); !isStr || !slices.Contains(allowed, str) {
			bad("%s contains %#v, want one of %v", field, x, allowed)
		}
	}
}

func checkPush(v any, bad func(string, ...any)) {
	p, isObj := v.(map[string]any)
	if !isObj {
		bad("OfflinePushInfo = %#v, want an object", v)
		return
	}
	for k, x := range p {
		switch k {
		case "PushFlag":
			if n, isInt := uint32Of(x); !isInt || n > 1 {
				bad("OfflinePushInfo.PushFlag = %#v, want 0 or 1", x)
			}
		case "Title", "Desc", "Ext":
			if _, isStr := x.(string); !isStr {
				bad("OfflinePushInfo.%s = %#v, want a string", k, x)
			}
		case "AndroidInfo", "ApnsInfo":
			if _, isObj := x.(map[string]any); !isObj {
				bad("OfflinePushInfo.%s = %#v, want an object", k, x)
			}
		default:
			bad("OfflinePushInfo: unknown field %q", k)
		}
	}
}

// checkObject checks that obj has only string fields out of allowed, and
// all of required.
func checkObject(obj map[string]any, path string, allowed, required []string, bad func(string, ...any)) {
	for k, x := range obj {
		if !slices.Contains(allowed, k) {
			bad("%s: unknown field %q (want %v)", path, k, allowed)
		} else if _, isStr := x.(string); !isStr {
			bad("%s.%s = %#v, want a string", path, k, x)
		}
	}
	for _, k := range required {
		if _, present := obj[k]; !present {
			bad("%s.%s missing", path, k)
		}
	}
}

func uint32Of(v any) (uint32, bool) {
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, false
	}
	u, err := strconv.ParseUint(n.String(), 10, 32)
	return uint32(u), err == nil
}

// deliver applies a checked sendmsg: the size limit, MsgLifeTime, and the
// dedup window. It fills IM's success fields into resp.
func (s *Server) deliver(req *Request, resp map[string]any) (int, string) {
	return s.deliverMsg(req, resp, false)
}

// deliverMsg is deliver for sendmsg, or for one recipient's copy of a
// batchsendmsg (batch), which is never deduplicated.
func (s *Server) deliverMsg(req *Request, resp map[string]any, batch bool) (int, string) {
	var raw struct {
		SyncOtherMachine      int
		From_Account          string
		To_Account            string
		MsgLifeTime           *int64
		MsgSeq                uint32
		MsgRandom             uint32
		ForbidCallbackControl []string
		SendMsgControl        []string
		MsgBody               []struct {
			MsgType    string
			MsgContent json.RawMessage
		}
		CloudCustomData string
		OfflinePushInfo *struct {
			PushFlag         int
			Title, Desc, Ext string
			AndroidInfo      json.RawMessage
			ApnsInfo         json.RawMessage
		}
	}
	if err := json.Unmarshal(req.Body, &raw); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	msg := Message{
		From: raw.From_Account, To: raw.To_Account, MsgSeq: raw.MsgSeq, MsgRandom: raw.MsgRandom,
		SyncOtherMachine: raw.SyncOtherMachine, MsgLifeTime: raw.MsgLifeTime,
		ForbidCallbackControl: raw.ForbidCallbackControl, SendMsgControl: raw.SendMsgControl,
		CloudCustomData: raw.CloudCustomData, Body: req.Body,
	}
	if p := raw.OfflinePushInfo; p != nil {
		msg.OfflinePush = &OfflinePush{PushFlag: p.PushFlag, Title: p.Title, Desc: p.Desc, Ext: p.Ext,
			HasAndroid: p.AndroidInfo != nil, HasApns: p.ApnsInfo != nil}
	}
	size := 0
	crc := crc32.NewIEEE()
	for _, e := range raw.MsgBody {
		crc.Write(e.MsgContent)
		switch e.MsgType {
		case "TIMTextElem":
			var c struct{ Text string }
			_ = json.Unmarshal(e.MsgContent, &c)
			msg.Text += c.Text
			size += len(c.Text)
		case "TIMCustomElem":
			var c Custom
			_ = json.Unmarshal(e.MsgContent, &c)
			msg.Custom = &c
			size += len(c.Data) + len(c.Desc) + len(c.Ext) + len(c.Sound)
		}
	}
	if size > MaxContent {
		return 93000, "message body is larger than 8 KB"
	}
	if raw.MsgLifeTime != nil && *raw.MsgLifeTime > 604800 {
		return 90026, "MsgLifeTime is longer than 7 days"
	}
	if !utf8.Valid(req.Body) {
		return 90001, "body is not UTF-8"
	}

	from := raw.From_Account
	if from == "" {
		from = s.opts.Admin
	}
	key := fmt.Sprintf("%s|%d|%d|%08x", from, raw.MsgSeq, raw.MsgRandom, crc.Sum32())
	msg.Batch = batch
	now := s.opts.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, dup := s.seen[key]; dup && !batch && now.Sub(e.at) <= DedupWindow {
		s.duplicates++
		resp["MsgTime"] = e.at.Unix()
		resp["MsgKey"] = e.key
		return 0, ""
	}
	msg.MsgKey = fmt.Sprintf("%d_%d_%d", raw.MsgRandom, len(s.messages)+1, now.Unix())
	s.seen[key] = dedupEntry{at: now, key: msg.MsgKey}
	s.messages = append(s.messages, msg)
	resp["MsgTime"] = now.Unix()
	resp["MsgKey"] = msg.MsgKey
	return 0, ""
}
