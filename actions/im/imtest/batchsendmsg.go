package imtest

import (
	"encoding/json"
	"fmt"
	"sort"
)

// ---- openim/batchsendmsg

var batchFields = []string{"SyncOtherMachine", "From_Account", "To_Account", "MsgLifeTime", "MsgSeq",
	"MsgRandom", "MsgBody", "CloudCustomData", "SendMsgControl", "OfflinePushInfo", "OnlineOnlyFlag"}

func (s *Server) checkBatchSendMsg(m map[string]any) (int, string) {
	v := s.newViolations("batchsendmsg")
	onlyFields(m, "body", batchFields, v.bad)
	nonEmptyString(m, "From_Account", "", false, v.bad)
	to, isList := m["To_Account"].([]any)
	if !isList || len(to) == 0 {
		v.bad("To_Account = %#v, want a non-empty array of UserIDs", m["To_Account"])
	}
	seen := map[string]bool{}
	for i, x := range to {
		a, isStr := x.(string)
		if !isStr || a == "" {
			v.bad("To_Account[%d] = %#v, want a non-empty string", i, x)
		}
		if seen[a] {
			v.bad("To_Account names %q twice", a)
		}
		seen[a] = true
	}
	checkNumbers(m, v.bad)
	s.checkStrings(m, "SendMsgControl", []string{"NoUnread", "NoLastMsg", "WithMuteNotifications"}, v.bad)
	if x, present := m["CloudCustomData"]; present {
		if _, isStr := x.(string); !isStr {
			v.bad("CloudCustomData = %#v, want a string", x)
		}
	}
	if x, present := m["OfflinePushInfo"]; present {
		checkPush(x, v.bad)
	}
	checkMsgBody(m["MsgBody"], v.bad)
	if len(to) > MaxBatchTo {
		v.bad("%d recipients in one request, at most %d", len(to), MaxBatchTo)
		return 90011, "more than 500 recipients"
	}
	if !v.ok {
		return 90001, "invalid batchsendmsg request"
	}
	return 0, ""
}

func (s *Server) batchSendMsg(req *Request, reply Reply, resp map[string]any) (int, string) {
	var raw struct {
		To_Account []string
		MsgRandom  uint32
	}
	if err := json.Unmarshal(req.Body, &raw); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	// The message as sendmsg would see it, for deliver's checks.
	one, _ := decode(req.Body).(map[string]any)
	var errList []map[string]any
	sent := 0
	for _, to := range raw.To_Account {
		code, scripted := reply.Accounts[to]
		if !scripted && s.isUnknown(to) {
			code, scripted = 70107, true // the batch page's code for an account that does not exist
		}
		if scripted && code != 0 {
			errList = append(errList, map[string]any{"To_Account": to, "ErrorCode": code})
			continue
		}
		if code, info := s.deliverTo(req, one, to); code != 0 {
			return code, info
		}
		sent++
	}
	if sent == 0 && len(errList) > 0 {
		// Every recipient failed: the current page's shape, FAIL with a
		// non-zero ErrorCode and no ErrorList
		// (https://cloud.tencent.com/document/product/269/1612): 90012
		// when none is registered.
		code := errList[0]["ErrorCode"].(int)
		if code == 70107 {
			return 90012, "invalid To_Account"
		}
		return code, "every recipient failed"
	}
	resp["MsgKey"] = fmt.Sprintf("%d_batch_%d", raw.MsgRandom, len(s.Requests()))
	if len(errList) == 0 {
		return 0, ""
	}
	sort.Slice(errList, func(i, j int) bool { return errList[i]["To_Account"].(string) < errList[j]["To_Account"].(string) })
	resp["ErrorList"] = errList
	resp["ActionStatus"] = "SomeError"
	return 0, ""
}

// deliverTo delivers one recipient's copy of a batch message through
// deliver's checks, without sendmsg's dedup: no batchsendmsg page documents
// one, so a batch sent again is delivered again, which tests can see.
func (s *Server) deliverTo(req *Request, one map[string]any, to string) (int, string) {
	one["To_Account"] = to
	body, _ := json.Marshal(one)
	r := *req
	r.Body = body
	return s.deliverMsg(&r, map[string]any{}, true)
}
