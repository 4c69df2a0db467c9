package imtest

import (
	"encoding/json"
)

// ---- sns/black_list_add (https://cloud.tencent.com/document/product/269/3718)

// MaxBlacklistAdd is black_list_add's To_Account cap.
const MaxBlacklistAdd = 1000

// BlacklistAlreadyInfo is the ResultInfo, with code 30001, of an account
// already blocked (the page's sample).
const BlacklistAlreadyInfo = "Err_SNS_BlackListAdd_Already_Exist"

func (s *Server) checkBlacklistAdd(m map[string]any) (int, string) {
	v := s.newViolations("black_list_add")
	onlyFields(m, "body", []string{"From_Account", "To_Account"}, v.bad)
	nonEmptyString(m, "From_Account", "", true, v.bad)
	accountList(m, "To_Account", MaxBlacklistAdd, v.bad)
	if !v.ok {
		return 30001, "invalid parameters"
	}
	return 0, ""
}

func (s *Server) blacklistAdd(req *Request, reply Reply, resp map[string]any) (int, string) {
	var body struct {
		From string   `json:"From_Account"`
		To   []string `json:"To_Account"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return 90001, "JSON format error: " + err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]map[string]any, 0, len(body.To))
	var failed []string
	for _, to := range body.To {
		code, scripted := reply.Accounts[to]
		info := ""
		switch {
		case scripted:
		case s.blocked[body.From][to]:
			code, info = 30001, BlacklistAlreadyInfo
		default:
			if s.blocked[body.From] == nil {
				s.blocked[body.From] = map[string]bool{}
			}
			s.blocked[body.From][to] = true
			// Blocking dissolves the friendship both ways.
			delete(s.friends[body.From], to)
			delete(s.friends[to], body.From)
		}
		if code != 0 {
			failed = append(failed, to)
		}
		results = append(results, snsResult(to, code, info))
	}
	resp["ResultItem"] = results
	if len(failed) > 0 {
		resp["Fail_Account"] = failed
	}
	return 0, ""
}

// Blocked reports whether to is on from's blocklist.
func (s *Server) Blocked(from, to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[from][to]
}
