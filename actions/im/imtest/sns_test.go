package imtest_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/friendflow/friendflow/actions/im/imtest"
)

const (
	addPath     = "/v4/sns/friend_add"
	deletePath  = "/v4/sns/friend_delete"
	blockPath   = "/v4/sns/black_list_add"
	validAdd    = `{"From_Account":"o","AddFriendItem":[{"To_Account":"a","AddSource":"AddSource_Type_Server"}],"AddType":"Add_Type_Both","ForceAddFlags":0}`
	validDelete = `{"From_Account":"o","To_Account":["a"],"DeleteType":"Delete_Type_Both"}`
	validBlock  = `{"From_Account":"o","To_Account":["a"]}`
)

// The fake reports each deviation of the relationship APIs' bodies from
// Tencent's description, and answers them with an error code.
func TestServerCatchesSnsViolations(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := imtest.NewServer(t, imtest.Options{OnViolation: func(m string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	}})
	c := &rawClient{t: t, srv: srv}
	cases := []struct{ name, path, body, want string }{
		{"add: no AddSource", addPath, strings.Replace(validAdd, `,"AddSource":"AddSource_Type_Server"`, ``, 1), "AddSource missing"},
		{"add: bare AddSource", addPath, strings.Replace(validAdd, `AddSource_Type_Server`, `Server`, 1), "AddSource_Type_<keyword>"},
		{"add: AddType", addPath, strings.Replace(validAdd, `Add_Type_Both`, `Both`, 1), "AddType"},
		{"add: Force 2", addPath, strings.Replace(validAdd, `"ForceAddFlags":0`, `"ForceAddFlags":2`, 1), "ForceAddFlags"},
		{"add: GroupName list", addPath, strings.Replace(validAdd, `"To_Account":"a"`, `"To_Account":"a","GroupName":["g"]`, 1), "GroupName"},
		{"add: item typo", addPath, strings.Replace(validAdd, `"To_Account"`, `"ToAccount"`, 1), "unknown field \"ToAccount\""},
		{"add: From missing", addPath, strings.Replace(validAdd, `"From_Account":"o",`, ``, 1), "From_Account missing"},
		{"delete: no DeleteType", deletePath, `{"From_Account":"o","To_Account":["a"]}`, "DeleteType"},
		{"delete: bad DeleteType", deletePath, strings.Replace(validDelete, `Delete_Type_Both`, `Both`, 1), "DeleteType"},
		{"delete: To string", deletePath, strings.Replace(validDelete, `["a"]`, `"a"`, 1), "non-empty array"},
		{"delete: 1001", deletePath, strings.Replace(validDelete, `["a"]`, recipients(1001), 1), "at most 1000"},
		{"block: twice", blockPath, strings.Replace(validBlock, `["a"]`, `["a","a"]`, 1), "twice"},
		{"block: extra field", blockPath, strings.Replace(validBlock, `"From_Account"`, `"DeleteType":"x","From_Account"`, 1), "unknown field \"DeleteType\""},
	}
	for _, tc := range cases {
		mu.Lock()
		got = nil
		mu.Unlock()
		if reply := c.post(tc.path, tc.body); reply["ActionStatus"] != "FAIL" {
			t.Errorf("%s: answered %v", tc.name, reply)
		}
		mu.Lock()
		if all := strings.Join(got, "\n"); !strings.Contains(all, tc.want) {
			t.Errorf("%s: violations %q, want one containing %q", tc.name, all, tc.want)
		}
		mu.Unlock()
	}
	if len(srv.FriendAdds()) != 0 || srv.Blocked("o", "a") {
		t.Error("bad requests took effect")
	}
	mu.Lock()
	got = nil
	mu.Unlock()
	for _, r := range []struct{ path, body string }{{addPath, validAdd}, {deletePath, validDelete}, {blockPath, validBlock}} {
		if reply := c.post(r.path, r.body); reply["ActionStatus"] != "OK" {
			t.Errorf("%s: %v", r.path, reply)
		}
	}
	if len(got) != 0 {
		t.Errorf("valid requests reported: %v", got)
	}
}

// Valid requests get IM's per-account answers.
func TestServerAnswersSnsAPIs(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := &rawClient{t: t, srv: srv}
	items := func(r map[string]any) string { b, _ := json.Marshal(r["ResultItem"]); return string(b) }

	srv.Script(imtest.Reply{Accounts: map[string]int{"a": 30539}})
	if r := c.post(addPath, validAdd); !strings.Contains(items(r), `"ResultCode":30539`) || r["Fail_Account"] != nil {
		t.Errorf("friend_add pending: %v", r)
	}
	if r := c.post(addPath, validAdd); !strings.Contains(items(r), `"ResultCode":0`) || !srv.IsFriend("o", "a") || !srv.IsFriend("a", "o") {
		t.Errorf("friend_add: %v", r)
	}
	if r := c.post(deletePath, validDelete); !strings.Contains(items(r), `"ResultCode":0`) || srv.IsFriend("a", "o") {
		t.Errorf("friend_delete: %v", r)
	}
	if r := c.post(deletePath, validDelete); !strings.Contains(items(r), `"ResultCode":31704`) {
		t.Errorf("friend_delete of no friend: %v", r)
	}
	if r := c.post(blockPath, validBlock); !strings.Contains(items(r), `"ResultCode":0`) || !srv.Blocked("o", "a") {
		t.Errorf("black_list_add: %v", r)
	}
	r := c.post(blockPath, validBlock)
	if !strings.Contains(items(r), `"ResultCode":30001,"ResultInfo":"`+imtest.BlacklistAlreadyInfo+`"`) || r["Fail_Account"] == nil {
		t.Errorf("black_list_add again: %v", r)
	}
	if r := c.post(addPath, validAdd); !strings.Contains(items(r), `"ResultCode":30515`) {
		t.Errorf("friend_add across a blocklist: %v", r)
	}
}
