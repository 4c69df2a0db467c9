package imtest

import (
	"encoding/json"
	"slices"
	"strings"
)

// ---- profile/portrait_get (https://www.tencentcloud.com/document/product/1047/34917)

// MaxPortraitGet is portrait_get's To_Account cap: the page's field table
// says the list must not exceed 100.
const MaxPortraitGet = 100

// PortraitReadFailInfo is the ResultInfo of the page's partial-failure
// sample (code 40006 for one user).
const PortraitReadFailInfo = "Err_Profile_PortraitGet_Read_Custom_Data_Fail"

// The standard profile tags (https://www.tencentcloud.com/document/product/1047/33520).
var standardProfileTags = []string{
	"Tag_Profile_IM_Nick", "Tag_Profile_IM_Gender", "Tag_Profile_IM_BirthDay", "Tag_Profile_IM_Location",
	"Tag_Profile_IM_SelfSignature", "Tag_Profile_IM_AllowType", "Tag_Profile_IM_Language", "Tag_Profile_IM_Image",
	"Tag_Profile_IM_MsgSettings", "Tag_Profile_IM_AdminForbidType", "Tag_Profile_IM_Level", "Tag_Profile_IM_Role",
}

// SetProfile gives account the profile fields tags (Tag → value: a string,
// or an int for the uint32 tags such as Tag_Profile_IM_Language),
// replacing the ones it had.
func (s *Server) SetProfile(account string, tags map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.profiles == nil {
		s.profiles = map[string]map[string]any{}
	}
	if s.profiles[account] == nil {
		s.profiles[account] = map[string]any{}
	}
	for k, v := range tags {
		s.profiles[account][k] = v
	}
}

// CustomProfileTags declares the app's custom profile fields (keys without
// Tag_Profile_Custom_), as the console does: reading any other custom tag
// fails with 40009.
func (s *Server) CustomProfileTags(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customTags = append(s.customTags, keys...)
}

// UnknownFailsPortraitGet chooses how portrait_get answers for an account
// Unknown names, which Tencent does not document: true (the default)
// fails the whole request with 40003, false answers the account's own
// entry with ResultCode 40003 and lists it in Fail_Account.
func (s *Server) UnknownFailsPortraitGet(whole bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknownPerUser = !whole
}

func (s *Server) checkPortraitGet(m map[string]any) (int, string) {
	v := s.newViolations("portrait_get")
	onlyFields(m, "body", []string{"To_Account", "TagList"}, v.bad)
	to := accountList(m, "To_Account", MaxPortraitGet, v.bad)
	tags, isList := m["TagList"].([]any)
	if !isList || len(tags) == 0 {
		v.bad("TagList = %#v, want a non-empty array of tags", m["TagList"])
	}
	var seen []string
	for i, t := range tags {
		tag, isStr := t.(string)
		custom, isCustom := strings.CutPrefix(tag, "Tag_Profile_Custom_")
		switch {
		case !isStr:
			v.bad("TagList[%d] = %#v, want a string", i, t)
		case isCustom && !customKey(custom):
			v.bad("TagList[%d] = %q: a custom key is 1 to 8 English letters", i, tag)
		case !isCustom && !slices.Contains(standardProfileTags, tag):
			v.bad("TagList[%d] = %q is no standard tag and not Tag_Profile_Custom_*", i, tag)
		case slices.Contains(seen, tag):
			v.bad("TagList names %q twice", tag)
		}
		seen = append(seen, tag)
	}
	if !v.ok {
		if len(to) == 0 {
			return 40002, "To_Account is empty"
		}
		return 40001, "invalid parameters"
	}
	return 0, ""
}

func (s *Server) portraitGet(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		To   []string `json:"To_Account"`
		Tags []string `json:"TagList"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range body.Tags {
		if k, ok := strings.CutPrefix(t, "Tag_Profile_Custom_"); ok && !slices.Contains(s.customTags, k) {
			return 40009, "tag does not exist: " + t
		}
	}
	items := make([]map[string]any, 0, len(body.To))
	var failed []string
	for _, to := range body.To {
		code, scripted := reply.Accounts[to]
		info := ""
		if !scripted && s.unknown[to] {
			if !s.unknownPerUser {
				return 40003, "account does not exist: " + to
			}
			code, info = 40003, "Err_Profile_PortraitGet_Account_Not_Exist"
		}
		if code == 40006 && info == "" {
			info = PortraitReadFailInfo
		}
		if code != 0 {
			failed = append(failed, to)
			items = append(items, snsResult(to, code, info))
			continue
		}
		var pitems []map[string]any
		for _, t := range body.Tags {
			if val, set := s.profiles[to][t]; set {
				pitems = append(pitems, map[string]any{"Tag": t, "Value": val})
			}
		}
		item := snsResult(to, 0, "")
		item["ProfileItem"] = pitems
		items = append(items, item)
	}
	resp["UserProfileItem"] = items
	if len(failed) > 0 {
		resp["Fail_Account"] = failed
	}
	return 0, ""
}
