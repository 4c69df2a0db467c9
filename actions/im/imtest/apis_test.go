package imtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/friendflow/friendflow/actions/im/imtest"
)

// post sends body to path and returns the decoded reply.
func (c *rawClient) post(path, body string) map[string]any {
	resp, err := http.Post(c.srv.URL+path+"?"+c.query(nil), "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func members(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`{"Member_Account":"u%d"}`, i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func recipients(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"u%d"`, i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

const (
	groupPath  = "/v4/group_open_http_svc/add_group_member"
	updatePath = "/v4/sns/friend_update"
	batchPath  = "/v4/openim/batchsendmsg"
	validBatch = `{"To_Account":["a","b"],"MsgRandom":1,"MsgSeq":2,"SyncOtherMachine":2,` +
		`"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}`
	validUpdate = `{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"r"}]}]}`
)

// The fake reports each deviation of the three batch APIs' bodies from
// Tencent's description, and answers them with an error code.
func TestServerCatchesBatchAPIViolations(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := imtest.NewServer(t, imtest.Options{OnViolation: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	}})
	srv.AddGroup("g", imtest.Public)
	c := &rawClient{t: t, srv: srv}
	cases := []struct {
		name, path, body string
		want             string
	}{
		{"GroupId missing", groupPath, `{"MemberList":[{"Member_Account":"a"}]}`, "GroupId missing"},
		{"GroupId number", groupPath, `{"GroupId":5,"MemberList":[{"Member_Account":"a"}]}`, "GroupId = "},
		{"Silence 2", groupPath, `{"GroupId":"g","Silence":2,"MemberList":[{"Member_Account":"a"}]}`, "Silence"},
		{"Silence bool", groupPath, `{"GroupId":"g","Silence":true,"MemberList":[{"Member_Account":"a"}]}`, "Silence"},
		{"member typo", groupPath, `{"GroupId":"g","MemberList":[{"MemberAccount":"a"}]}`, "unknown field \"MemberAccount\""},
		{"members empty", groupPath, `{"GroupId":"g","MemberList":[]}`, "MemberList"},
		{"member twice", groupPath, `{"GroupId":"g","MemberList":[{"Member_Account":"a"},{"Member_Account":"a"}]}`, "twice"},
		{"101 members", groupPath, `{"GroupId":"g","MemberList":` + members(101) + `}`, "at most 100"},
		{"From missing", updatePath, `{"UpdateItem":[{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"r"}]}]}`, "From_Account missing"},
		{"bad tag", updatePath, strings.Replace(validUpdate, "Tag_SNS_IM_Remark", "Tag_SNS_IM_Remarks", 1), "not one friendflow writes"},
		{"custom name", updatePath, strings.Replace(validUpdate, "Tag_SNS_IM_Remark", "Tag_SNS_Custom_toolongname", 1), "custom field's name"},
		{"remark number", updatePath, strings.Replace(validUpdate, `"Value":"r"`, `"Value":1`, 1), "Tag_SNS_IM_Remark ="},
		{"group string", updatePath, strings.Replace(validUpdate, `"Tag_SNS_IM_Remark","Value":"r"`, `"Tag_SNS_IM_Group","Value":"vip"`, 1), "Tag_SNS_IM_Group ="},
		{"friend twice", updatePath, `{"From_Account":"a","UpdateItem":[` +
			`{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"r"}]},` +
			`{"To_Account":"b","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"s"}]}]}`, "twice in one request"},
		{"no SnsItem", updatePath, `{"From_Account":"a","UpdateItem":[{"To_Account":"b","SnsItem":[]}]}`, "SnsItem"},
		{"To_Account string", batchPath, strings.Replace(validBatch, `["a","b"]`, `"a"`, 1), "want a non-empty array"},
		{"recipient twice", batchPath, strings.Replace(validBatch, `["a","b"]`, `["a","a"]`, 1), "twice"},
		{"501 recipients", batchPath, strings.Replace(validBatch, `["a","b"]`, recipients(501), 1), "at most 500"},
		{"callback control", batchPath, strings.Replace(validBatch, `"MsgSeq":2`, `"MsgSeq":2,"ForbidCallbackControl":["ForbidBeforeSendMsgCallback"]`, 1), "unknown field \"ForbidCallbackControl\""},
		{"MsgRandom missing", batchPath, strings.Replace(validBatch, `"MsgRandom":1,`, ``, 1), "MsgRandom missing"},
	}
	for _, tc := range cases {
		mu.Lock()
		got = nil
		mu.Unlock()
		reply := c.post(tc.path, tc.body)
		if reply["ActionStatus"] != "FAIL" {
			t.Errorf("%s: answered %v", tc.name, reply)
		}
		mu.Lock()
		if all := strings.Join(got, "\n"); !strings.Contains(all, tc.want) {
			t.Errorf("%s: violations %q, want one containing %q", tc.name, all, tc.want)
		}
		mu.Unlock()
	}
	if n := len(srv.Messages()) + len(srv.GroupMembers("g")) + len(srv.FriendUpdates()); n != 0 {
		t.Errorf("%d effects of bad requests", n)
	}
}

// Valid requests get IM's answers, per account as scripted.
func TestServerAnswersBatchAPIs(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := &rawClient{t: t, srv: srv}
	srv.AddGroup("g", imtest.Public, "old")
	srv.AddGroup("live", imtest.AVChatRoom)

	srv.Script(imtest.Reply{Accounts: map[string]int{"inv": 3, "bad": 0}})
	reply := c.post(groupPath, `{"GroupId":"g","MemberList":[{"Member_Account":"new"},{"Member_Account":"old"},{"Member_Account":"inv"},{"Member_Account":"bad"}]}`)
	wantMembers := `[{"Member_Account":"new","Result":1},{"Member_Account":"old","Result":2},{"Member_Account":"inv","Result":3},{"Member_Account":"bad","Result":0}]`
	if b, _ := json.Marshal(reply["MemberList"]); string(b) != wantMembers || reply["ActionStatus"] != "OK" {
		t.Errorf("add_group_member: %v", reply)
	}
	for group, code := range map[string]float64{"nope": 10010, "live": 10007} {
		if r := c.post(groupPath, `{"GroupId":"`+group+`","MemberList":[{"Member_Account":"x"}]}`); r["ErrorCode"] != code {
			t.Errorf("group %s: %v", group, r)
		}
	}

	srv.Script(imtest.Reply{Accounts: map[string]int{"b": 30008}})
	reply = c.post(updatePath, validUpdate)
	if b, _ := json.Marshal(reply["ResultItem"]); !strings.Contains(string(b), `"ResultCode":30008`) || len(srv.FriendUpdates()) != 0 {
		t.Errorf("friend_update scripted 30008: %v, %d updates", reply, len(srv.FriendUpdates()))
	}
	if r := c.post(updatePath, validUpdate); r["ActionStatus"] != "OK" || srv.Friend("a", "b")["Tag_SNS_IM_Remark"] != "r" {
		t.Errorf("friend_update: %v", r)
	}

	srv.Script(imtest.Reply{Accounts: map[string]int{"b": 70107}})
	reply = c.post(batchPath, validBatch)
	if b, _ := json.Marshal(reply["ErrorList"]); reply["ActionStatus"] != "SomeError" || reply["ErrorCode"] != 0.0 || string(b) != `[{"ErrorCode":70107,"To_Account":"b"}]` {
		t.Errorf("batchsendmsg SomeError: %v", reply)
	}
	// Every recipient unknown: the current page's FAIL 90012 without an
	// ErrorList.
	srv.Unknown("a", "b")
	if reply = c.post(batchPath, validBatch); reply["ActionStatus"] != "FAIL" || reply["ErrorCode"] != 90012.0 || reply["ErrorList"] != nil {
		t.Errorf("batchsendmsg all failed: %v", reply)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages after the all-fail reply, want b's one", n)
	}
	// The same message again: batchsendmsg documents no dedup, so the
	// fake delivers again.
	srv2 := imtest.NewServer(t, imtest.Options{})
	c2 := &rawClient{t: t, srv: srv2}
	for range 2 {
		if reply = c2.post(batchPath, validBatch); reply["ActionStatus"] != "OK" {
			t.Errorf("batchsendmsg: %v", reply)
		}
	}
	if n, d := len(srv2.Messages()), srv2.Duplicates(); n != 4 || d != 0 {
		t.Errorf("%d messages, %d duplicates; want every copy delivered", n, d)
	}
	if r := c2.post(batchPath, strings.Replace(validBatch, `"hi"`, `"`+strings.Repeat("x", 8001)+`"`, 1)); r["ErrorCode"] != 93000.0 {
		t.Errorf("oversized: %v", r)
	}
}
