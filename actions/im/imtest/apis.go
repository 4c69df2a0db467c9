package imtest

import (
	"slices"
)

// The batch APIs the fake knows besides sendmsg, as Tencent documents them:
// group_open_http_svc/add_group_member
// (https://www.tencentcloud.com/document/product/1047/34921), sns/friend_update
// (https://www.tencentcloud.com/document/product/1047/34904) and
// openim/batchsendmsg (https://www.tencentcloud.com/document/product/1047/34920),
// and sns/friend_add, sns/friend_delete, sns/black_list_add (their files).
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
	"/v4/sns/friend_add":                       {(*Server).checkFriendAdd, (*Server).friendAdd},
	"/v4/sns/friend_delete":                    {(*Server).checkFriendDelete, (*Server).friendDelete},
	"/v4/sns/black_list_add":                   {(*Server).checkBlacklistAdd, (*Server).blacklistAdd},
	"/v4/profile/portrait_get":                 {(*Server).checkPortraitGet, (*Server).portraitGet},
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
