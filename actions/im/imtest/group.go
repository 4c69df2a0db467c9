package imtest

import (
	"encoding/json"
	"fmt"
	"slices"
)

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
	for _, e := range body.MemberList {
		if _, scripted := reply.Accounts[e.MemberAccount]; !scripted && s.unknown[e.MemberAccount] {
			// The page lists 10019 as the request's error and says to
			// check every Member_Account; it does not say whether the
			// others are added, so the fake adds none
			// (https://trtc.io/document/34921).
			return 10019, "the requested UserID does not exist: check every Member_Account in MemberList"
		}
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
