package imtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ---- sns/friend_add (https://trtc.io/document/34902)

// MaxFriendAdd is how many AddFriendItem friendflow sends in one request:
// the page gives no cap, friendflow keeps to 100.
const MaxFriendAdd = 100

func (s *Server) checkFriendAdd(m map[string]any) (int, string) {
	v := s.newViolations("friend_add")
	onlyFields(m, "body", []string{"From_Account", "AddFriendItem", "AddType", "ForceAddFlags"}, v.bad)
	nonEmptyString(m, "From_Account", "", true, v.bad)
	if x, present := m["AddType"]; present && x != "Add_Type_Single" && x != "Add_Type_Both" {
		v.bad("AddType = %#v, want Add_Type_Single or Add_Type_Both", x)
	}
	if x, present := m["ForceAddFlags"]; present {
		if n, isInt := uint32Of(x); !isInt || n > 1 {
			v.bad("ForceAddFlags = %#v, want 0 or 1", x)
		}
	}
	items := objects(m, "AddFriendItem", v.bad)
	if len(items) > MaxFriendAdd {
		v.bad("%d items in one request, friendflow sends at most %d", len(items), MaxFriendAdd)
	}
	seen := map[string]bool{}
	for i, it := range items {
		checkAddItem(it, fmt.Sprintf("AddFriendItem[%d]", i), seen, v.bad)
	}
	if !v.ok {
		return 30001, "invalid parameters"
	}
	return 0, ""
}

// checkAddItem checks one AddFriendItem; seen holds the accounts of the
// items before it.
func checkAddItem(it map[string]any, where string, seen map[string]bool, bad func(string, ...any)) {
	onlyFields(it, where, []string{"To_Account", "Remark", "GroupName", "AddSource", "AddWording"}, bad)
	to := nonEmptyString(it, "To_Account", where+".", true, bad)
	if seen[to] {
		bad("To_Account %q twice in one request", to)
	}
	seen[to] = true
	// AddSource is required, AddSource_Type_<keyword>.
	if src := nonEmptyString(it, "AddSource", where+".", true, bad); src != "" && !strings.HasPrefix(src, "AddSource_Type_") {
		bad("%s.AddSource = %q, want AddSource_Type_<keyword>", where, src)
	}
	if r, present := it["Remark"]; present {
		if str, isStr := r.(string); !isStr || len(str) > maxRemark {
			bad("%s.Remark = %#v, want a string of at most %d bytes", where, r, maxRemark)
		}
	}
	if g, present := it["GroupName"]; present {
		// One friend group, a single string (not a list, unlike
		// friend_update's Tag_SNS_IM_Group).
		if str, isStr := g.(string); !isStr || str == "" || len(str) > maxGroupName {
			bad("%s.GroupName = %#v, want one name of 1 to %d bytes", where, g, maxGroupName)
		}
	}
	if w, present := it["AddWording"]; present {
		if _, isStr := w.(string); !isStr {
			bad("%s.AddWording = %#v, want a string", where, w)
		}
	}
}

func (s *Server) friendAdd(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		From          string `json:"From_Account"`
		AddType       string
		ForceAddFlags int
		AddFriendItem []struct {
			To string `json:"To_Account"`
		}
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unknown[body.From] {
		return 30003, "From_Account does not exist"
	}
	results := make([]map[string]any, 0, len(body.AddFriendItem))
	var failed []string
	for _, it := range body.AddFriendItem {
		code, scripted := reply.Accounts[it.To]
		switch {
		case scripted:
		case s.unknown[it.To]:
			code = 30003
		case s.blocked[body.From][it.To] || s.blocked[it.To][body.From]:
			code = 30515
		default:
			s.befriend(body.From, it.To)
			if body.AddType != "Add_Type_Single" {
				s.befriend(it.To, body.From)
			}
			s.adds = append(s.adds, FriendAdd{From: body.From, To: it.To, AddType: body.AddType, Force: body.ForceAddFlags == 1})
		}
		if code != 0 && code != 30539 {
			failed = append(failed, it.To)
		}
		results = append(results, snsResult(it.To, code, ""))
	}
	resp["ResultItem"] = results
	if len(failed) > 0 {
		resp["Fail_Account"] = failed
	}
	return 0, ""
}

// FriendAdd is one friendship friend_add made.
type FriendAdd struct {
	From, To string
	AddType  string // as sent; "" when absent
	Force    bool
}

// FriendAdds returns the friendships friend_add made, in order.
func (s *Server) FriendAdds() []FriendAdd {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.adds)
}

// IsFriend reports whether to is on from's friend list (added by
// friend_add or friend_update, or by Befriend).
func (s *Server) IsFriend(from, to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.friends[from][to]
	return ok
}

// Befriend puts to on from's friend list.
func (s *Server) Befriend(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.befriend(from, to)
}

// befriend: s.mu is held.
func (s *Server) befriend(from, to string) {
	if s.friends[from] == nil {
		s.friends[from] = map[string]map[string]any{}
	}
	if s.friends[from][to] == nil {
		s.friends[from][to] = map[string]any{}
	}
}

// snsResult is one ResultItem of the relationship APIs.
func snsResult(to string, code int, info string) map[string]any {
	if code != 0 && info == "" {
		info = fmt.Sprintf("error %d", code)
	}
	return map[string]any{"To_Account": to, "ResultCode": code, "ResultInfo": info}
}

// accountList reads m[k] as a non-empty array of distinct non-empty
// strings, at most limit.
func accountList(m map[string]any, k string, limit int, bad func(string, ...any)) []string {
	list, isList := m[k].([]any)
	if !isList || len(list) == 0 {
		bad("%s = %#v, want a non-empty array of UserIDs", k, m[k])
		return nil
	}
	if len(list) > limit {
		bad("%d accounts in %s, at most %d", len(list), k, limit)
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		str, isStr := e.(string)
		switch {
		case !isStr || str == "":
			bad("%s[%d] = %#v, want a non-empty string", k, i, e)
		case slices.Contains(out, str):
			bad("%s names %q twice", k, str)
		}
		out = append(out, str)
	}
	return out
}
