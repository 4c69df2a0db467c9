package imtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The batch APIs the fake knows besides sendmsg, as Tencent documents them:
// group_open_http_svc/add_group_member
// (https://www.tencentcloud.com/document/product/1047/34921), sns/friend_update
// (https://www.tencentcloud.com/document/product/1047/34904) and
// openim/batchsendmsg (https://www.tencentcloud.com/document/product/1047/34920).
type api struct {
	// check reports every deviation of the body from the API's
	// description as a violation; a non-zero code is IM's answer.
	check func(s *Server, body map[string]any) (int, string)
	// apply carries out a checked request and fills resp.
	apply func(s *Server, req *Request, reply Reply, resp map[string]any) (int, string)
}

var apis = map[string]api{
	"/v4/group_open_http_svc/add_group_member": {(*Server).checkAddGroupMember, (*Server).addGroupMember},
	"/v4/sns/friend_update":                    {(*Server).checkFriendUpdate, (*Server).friendUpdate},
	"/v4/openim/batchsendmsg":                  {(*Server).checkBatchSendMsg, (*Server).batchSendMsg},
}

// Limits the fake enforces. friendflow sends at most 100 members per
// add_group_member (the smaller of the two documented limits): more is a
// violation, more than the API page's 300 also IM's error.
const (
	MaxGroupAdd      = 100
	groupAddAPILimit = 300
	MaxUpdateItems   = 1000
	MaxBatchTo       = 500
	maxRemark        = 96
	maxFriendGroups  = 32
	maxGroupName     = 30
	maxCustomKey     = 8
	maxCustomValue   = 500
)

// Group types (Tencent's names).
const (
	Work       = "Work"
	Public     = "Public"
	Meeting    = "Meeting"
	AVChatRoom = "AVChatRoom"
)

type group struct {
	typ     string
	members []string
}

// FriendUpdate is one UpdateItem that friend_update applied.
type FriendUpdate struct {
	From, To string
	Tags     map[string]any // Tag → Value: a string, or []string for Tag_SNS_IM_Group
	Request  int            // the index of its request among Requests()
}

// AddGroup creates a group of type typ (Work, Public, Meeting or
// AVChatRoom) that add_group_member can add to; members already in it.
func (s *Server) AddGroup(id, typ string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = &group{typ: typ, members: slices.Clone(members)}
}

// GroupMembers returns a group's members in the order they were added.
func (s *Server) GroupMembers(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[id]; g != nil {
		return slices.Clone(g.members)
	}
	return nil
}

// FriendUpdates returns the items friend_update applied, in order.
func (s *Server) FriendUpdates() []FriendUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// Friend returns the tags From keeps about To, as updated.
func (s *Server) Friend(from, to string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{}
	for k, v := range s.friends[from][to] {
		out[k] = v
	}
	return out
}

// apply carries out a checked request of a known API.
func (s *Server) apply(req *Request, reply Reply, resp map[string]any) (int, string) {
	if req.Path == "/v4/openim/sendmsg" {
		return s.deliver(req, resp)
	}
	if a, known := apis[req.Path]; known {
		return a.apply(s, req, reply, resp)
	}
	return 0, ""
}

// violations collects a body's deviations.
type violations struct {
	s   *Server
	api string
	ok  bool
}

func (v *violations) bad(format string, a ...any) {
	v.s.violate(v.api+": "+format, a...)
	v.ok = false
}

func (s *Server) newViolations(api string) *violations { return &violations{s: s, api: api, ok: true} }

func onlyFields(m map[string]any, where string, allowed []string, bad func(string, ...any)) {
	for k := range m {
		if !slices.Contains(allowed, k) {
			bad("%s: unknown field %q (want %v)", where, k, allowed)
		}
	}
}

// nonEmptyString reports m[k] that is absent (when required) or not a
// non-empty string.
func nonEmptyString(m map[string]any, k, where string, required bool, bad func(string, ...any)) string {
	v, present := m[k]
	if !present {
		if required {
			bad("%s%s missing", where, k)
		}
		return ""
	}
	str, isStr := v.(string)
	if !isStr || str == "" {
		bad("%s%s = %#v, want a non-empty string", where, k, v)
	}
	return str
}

// objects reads m[k] as a non-empty array of objects.
func objects(m map[string]any, k string, bad func(string, ...any)) []map[string]any {
	list, isList := m[k].([]any)
	if !isList || len(list) == 0 {
		bad("%s = %#v, want a non-empty array", k, m[k])
		return nil
	}
	out := make([]map[string]any, 0, len(list))
	for i, e := range list {
		obj, isObj := e.(map[string]any)
		if !isObj {
			bad("%s[%d] = %#v, want an object", k, i, e)
			continue
		}
		out = append(out, obj)
	}
	return out
}

// ---- group_open_http_svc/add_group_member

func (s *Server) checkAddGroupMember(m map[string]any) (int, string) {
	v := s.newViolations("add_group_member")
	onlyFields(m, "body", []string{"GroupId", "Silence", "MemberList"}, v.bad)
	nonEmptyString(m, "GroupId", "", true, v.bad)
	if x, present := m["Silence"]; present {
		if n, isInt := uint32Of(x); !isInt || n > 1 {
			v.bad("Silence = %#v, want 0 or 1", x)
		}
	}
	members := objects(m, "MemberList", v.bad)
	seen := map[string]bool{}
	for i, e := range members {
		onlyFields(e, fmt.Sprintf("MemberList[%d]", i), []string{"Member_Account"}, v.bad)
		a := nonEmptyString(e, "Member_Account", fmt.Sprintf("MemberList[%d].", i), true, v.bad)
		if seen[a] {
			v.bad("MemberList names %q twice", a)
		}
		seen[a] = true
	}
	if len(members) > MaxGroupAdd {
		v.bad("%d members in one request, friendflow sends at most %d", len(members), MaxGroupAdd)
	}
	if len(members) > groupAddAPILimit {
		return 10004, "too many members in one request"
	}
	if !v.ok {
		return 10004, "invalid parameters"
	}
	return 0, ""
}

func (s *Server) addGroupMember(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		GroupID    string `json:"GroupId"`
		MemberList []struct {
			MemberAccount string `json:"Member_Account"`
		}
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[body.GroupID]
	switch {
	case g == nil:
		return 10010, "group " + body.GroupID + " does not exist or was dismissed"
	case g.typ == AVChatRoom:
		return 10007, "no permission: an AVChatRoom takes no added members"
	}
	results := make([]map[string]any, 0, len(body.MemberList))
	for _, e := range body.MemberList {
		a := e.MemberAccount
		r, scripted := reply.Accounts[a]
		switch {
		case scripted:
		case slices.Contains(g.members, a):
			r = 2
		default:
			r = 1
			g.members = append(g.members, a)
		}
		results = append(results, map[string]any{"Member_Account": a, "Result": r})
	}
	resp["MemberList"] = results
	return 0, ""
}

// ---- sns/friend_update

func (s *Server) checkFriendUpdate(m map[string]any) (int, string) {
	v := s.newViolations("friend_update")
	onlyFields(m, "body", []string{"From_Account", "UpdateItem"}, v.bad)
	nonEmptyString(m, "From_Account", "", true, v.bad)
	items := objects(m, "UpdateItem", v.bad)
	if len(items) > MaxUpdateItems {
		v.bad("%d items in one request, at most %d", len(items), MaxUpdateItems)
	}
	seen := map[string]bool{}
	for i, it := range items {
		where := fmt.Sprintf("UpdateItem[%d]", i)
		onlyFields(it, where, []string{"To_Account", "SnsItem"}, v.bad)
		to := nonEmptyString(it, "To_Account", where+".", true, v.bad)
		if seen[to] {
			v.bad("To_Account %q twice in one request", to)
		}
		seen[to] = true
		checkSnsItems(it["SnsItem"], where+".SnsItem", v.bad)
	}
	if !v.ok {
		return 30001, "invalid parameters"
	}
	return 0, ""
}

func checkSnsItems(x any, where string, bad func(string, ...any)) {
	list, isList := x.([]any)
	if !isList || len(list) == 0 {
		bad("%s = %#v, want a non-empty array", where, x)
		return
	}
	tags := map[string]bool{}
	for i, e := range list {
		it, isObj := e.(map[string]any)
		if !isObj {
			bad("%s[%d] = %#v, want {Tag, Value}", where, i, e)
			continue
		}
		onlyFields(it, fmt.Sprintf("%s[%d]", where, i), []string{"Tag", "Value"}, bad)
		tag, _ := it["Tag"].(string)
		if tags[tag] {
			bad("%s: tag %q twice", where, tag)
		}
		tags[tag] = true
		checkSnsValue(tag, it["Value"], fmt.Sprintf("%s[%d]", where, i), bad)
	}
}

// checkSnsValue checks one tag's value
// (https://www.tencentcloud.com/document/product/1047/33521).
func checkSnsValue(tag string, val any, where string, bad func(string, ...any)) {
	switch {
	case tag == "Tag_SNS_IM_Remark":
		if str, isStr := val.(string); !isStr || len(str) > maxRemark {
			bad("%s: Tag_SNS_IM_Remark = %#v, want a string of at most %d bytes", where, val, maxRemark)
		}
	case tag == "Tag_SNS_IM_Group":
		names, isList := val.([]any)
		if !isList || len(names) > maxFriendGroups {
			bad("%s: Tag_SNS_IM_Group = %#v, want an array of at most %d names", where, val, maxFriendGroups)
			return
		}
		for _, n := range names {
			if str, isStr := n.(string); !isStr || str == "" || len(str) > maxGroupName {
				bad("%s: Tag_SNS_IM_Group holds %#v, want names of 1 to %d bytes", where, n, maxGroupName)
			}
		}
	case strings.HasPrefix(tag, "Tag_SNS_Custom_"):
		if !customKey(strings.TrimPrefix(tag, "Tag_SNS_Custom_")) {
			bad("%s: tag %q: a custom field's name has 1 to %d letters, digits or _", where, tag, maxCustomKey)
		}
		if str, isStr := val.(string); !isStr || len(str) > maxCustomValue {
			bad("%s: %s = %#v, want a string of at most %d bytes", where, tag, val, maxCustomValue)
		}
	default:
		bad("%s: tag %#v is not one friendflow writes (Tag_SNS_IM_Remark, Tag_SNS_IM_Group, Tag_SNS_Custom_*)", where, tag)
	}
}

func customKey(k string) bool {
	if k == "" || len(k) > maxCustomKey {
		return false
	}
	for _, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (s *Server) friendUpdate(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		From       string `json:"From_Account"`
		UpdateItem []struct {
			To      string `json:"To_Account"`
			SnsItem []struct {
				Tag   string
				Value any
			}
		}
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]map[string]any, 0, len(body.UpdateItem))
	var failed []string
	for _, it := range body.UpdateItem {
		code, scripted := reply.Accounts[it.To]
		if !scripted {
			s.applyUpdate(body.From, it.To, it.SnsItem)
		} else if code != 0 {
			failed = append(failed, it.To)
		}
		r := map[string]any{"To_Account": it.To, "ResultCode": code, "ResultInfo": ""}
		if code != 0 {
			r["ResultInfo"] = fmt.Sprintf("scripted error %d", code)
		}
		results = append(results, r)
	}
	resp["ResultItem"] = results
	if len(failed) > 0 {
		resp["Fail_Account"] = failed
	}
	return 0, ""
}

// applyUpdate records one item; s.mu is held.
func (s *Server) applyUpdate(from, to string, items []struct {
	Tag   string
	Value any
}) {
	if s.friends[from] == nil {
		s.friends[from] = map[string]map[string]any{}
	}
	if s.friends[from][to] == nil {
		s.friends[from][to] = map[string]any{}
	}
	u := FriendUpdate{From: from, To: to, Tags: map[string]any{}, Request: len(s.requests)}
	for _, e := range items {
		v := e.Value
		if list, isList := v.([]any); isList {
			names := make([]string, len(list))
			for i, n := range list {
				names[i], _ = n.(string)
			}
			v = names
		}
		s.friends[from][to][e.Tag] = v
		u.Tags[e.Tag] = v
	}
	s.updates = append(s.updates, u)
}

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
		if code, scripted := reply.Accounts[to]; scripted && code != 0 {
			errList = append(errList, map[string]any{"To_Account": to, "ErrorCode": code})
			continue
		}
		if code, info := s.deliverTo(req, one, to); code != 0 {
			return code, info
		}
		sent++
	}
	resp["MsgKey"] = fmt.Sprintf("%d_batch_%d", raw.MsgRandom, len(s.Requests()))
	if len(errList) == 0 {
		return 0, ""
	}
	sort.Slice(errList, func(i, j int) bool { return errList[i]["To_Account"].(string) < errList[j]["To_Account"].(string) })
	resp["ErrorList"] = errList
	if sent == 0 {
		return errList[0]["ErrorCode"].(int), "no recipient was sent to"
	}
	resp["ActionStatus"] = "SomeError"
	return 0, ""
}

// deliverTo delivers one recipient's copy of a batch message through
// deliver's checks, with a dedup key per recipient.
func (s *Server) deliverTo(req *Request, one map[string]any, to string) (int, string) {
	one["To_Account"] = to
	body, _ := json.Marshal(one)
	r := *req
	r.Body = body
	return s.deliverMsg(&r, map[string]any{}, true)
}
