package imtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

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
