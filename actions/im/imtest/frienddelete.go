package imtest

import (
	"encoding/json"
)

// ---- sns/friend_delete (https://cloud.tencent.com/document/product/269/1644)

// MaxFriendDelete is friend_delete's To_Account cap.
const MaxFriendDelete = 1000

func (s *Server) checkFriendDelete(m map[string]any) (int, string) {
	v := s.newViolations("friend_delete")
	onlyFields(m, "body", []string{"From_Account", "To_Account", "DeleteType"}, v.bad)
	nonEmptyString(m, "From_Account", "", true, v.bad)
	accountList(m, "To_Account", MaxFriendDelete, v.bad)
	// The page states no default for DeleteType: friendflow always
	// sends it, so its absence is a violation here.
	if x := m["DeleteType"]; x != "Delete_Type_Single" && x != "Delete_Type_Both" {
		v.bad("DeleteType = %#v, want Delete_Type_Single or Delete_Type_Both, always sent", x)
	}
	if !v.ok {
		return 30001, "invalid parameters"
	}
	return 0, ""
}

func (s *Server) friendDelete(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		From       string   `json:"From_Account"`
		To         []string `json:"To_Account"`
		DeleteType string
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]map[string]any, 0, len(body.To))
	for _, to := range body.To {
		code, scripted := reply.Accounts[to]
		if !scripted {
			if _, friends := s.friends[body.From][to]; !friends {
				code = 31704
			} else {
				delete(s.friends[body.From], to)
				if body.DeleteType == "Delete_Type_Both" {
					delete(s.friends[to], body.From)
				}
			}
		}
		results = append(results, snsResult(to, code, ""))
	}
	// The official sample has no Fail_Account, and "0" as ErrorInfo.
	resp["ResultItem"] = results
	return 0, ""
}
