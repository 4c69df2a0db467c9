package im_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// run checks params like the loader does and runs k for a job of event
// (From_Account alice, To_Account bob unless given).
func run(t *testing.T, k actions.Kind, jobID string, params map[string]any) error {
	t.Helper()
	p, err := k.Spec().Check(params)
	if err != nil {
		t.Fatalf("Check(%v): %v", params, err)
	}
	job := actions.Job{ID: jobID, Rule: "r", Action: k.Spec().Name, Params: params,
		Event: json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob"}`)}
	return k.Do(context.Background(), job, p)
}

// remaining is the list a failure leaves for the next attempt under key.
func remaining(t *testing.T, err error, key string) []string {
	t.Helper()
	rem := actions.Remaining(err)
	if rem == nil {
		t.Fatalf("%v: no remaining params", err)
	}
	switch l := rem[key].(type) {
	case []string:
		return l
	}
	t.Fatalf("remaining %s = %#v", key, rem[key])
	return nil
}

func accounts(prefix string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func TestAddToGroupSpec(t *testing.T) {
	spec := im.NewAddToGroup(nil).Spec()
	good := []map[string]any{
		{"group": "g"},
		{"group": "g", "members": []any{"a", "b"}, "silence": true},
		{"group": actions.Deferred{}, "members": []any{actions.Deferred{}, "x"}},
		{"group": "g", "members": actions.Deferred{}},
		{"group": "g", "members": accounts("u", im.MaxGroupJob)},
	}
	for _, p := range good {
		if _, err := spec.Check(p); err != nil {
			t.Errorf("Check(%v): %v", p, err)
		}
	}
	bad := map[string]map[string]any{
		"group: required":                           {"members": []any{"a"}},
		"group: must not be empty":                  {"group": ""},
		"members: 0 items, want at least 1":         {"group": "g", "members": []any{}},
		"members: 1001 items, more than the 1000":   {"group": "g", "members": accounts("u", im.MaxGroupJob+1)},
		"members: want list of strings, got string": {"group": "g", "members": "alice"},
		"members: item 2: want string, got map":     {"group": "g", "members": []any{"a", map[string]any{}}},
		"members: item 1 is empty":                  {"group": "g", "members": []any{""}},
		"silence: want bool":                        {"group": "g", "silence": "yes"},
		"GroupId: unknown parameter":                {"group": "g", "GroupId": "g"},
	}
	for want, p := range bad {
		if _, err := spec.Check(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
}

func TestAddToGroup(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("onboarding", imtest.Public, "carol")
	k := im.NewAddToGroup(newClient(t, srv))
	if err := run(t, k, "j1", map[string]any{"group": "onboarding", "members": []any{"alice", "bob", "carol", "alice"}, "silence": true}); err != nil {
		t.Fatal(err)
	}
	if got := srv.GroupMembers("onboarding"); !slices.Equal(got, []string{"carol", "alice", "bob"}) {
		t.Errorf("members %v", got)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v4/group_open_http_svc/add_group_member" {
		t.Fatalf("requests %+v", reqs)
	}
	want := `{"GroupId":"onboarding","Silence":1,"MemberList":[{"Member_Account":"alice"},{"Member_Account":"bob"},{"Member_Account":"carol"}]}`
	if string(reqs[0].Body) != want {
		t.Errorf("body %s\nwant %s", reqs[0].Body, want)
	}
	// Without members: the event's To_Account; without silence: no Silence.
	if err := run(t, k, "j2", map[string]any{"group": "onboarding"}); err != nil {
		t.Fatal(err)
	}
	if body := string(srv.Requests()[1].Body); body != `{"GroupId":"onboarding","MemberList":[{"Member_Account":"bob"}]}` {
		t.Errorf("body %s", body)
	}
}

// 250 members take three requests of at most 100 (the fake reports any
// larger one as a violation).
func TestAddToGroupSplits(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("big", imtest.Public)
	k := im.NewAddToGroup(newClient(t, srv))
	if err := run(t, k, "j", map[string]any{"group": "big", "members": accounts("u", 250)}); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, r := range srv.Requests() {
		var b struct{ MemberList []any }
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b.MemberList))
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("request sizes %v", sizes)
	}
	if n := len(srv.GroupMembers("big")); n != 250 {
		t.Errorf("%d members", n)
	}
}

// Results 1 and 2 are done, 3 is done (logged), 0 is retried alone.
func TestAddToGroupMemberResults(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("g", imtest.Work, "already")
	k := im.NewAddToGroup(newClient(t, srv))
	srv.Script(imtest.Reply{Accounts: map[string]int{"invitee": 3, "flaky": 0}})
	params := map[string]any{"group": "g", "members": []any{"new", "already", "invitee", "flaky"}}
	err := run(t, k, "j", params)
	if classOf(err) != "transient 0s" || !strings.Contains(err.Error(), "flaky") {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	rest := remaining(t, err, "members")
	if !slices.Equal(rest, []string{"flaky"}) {
		t.Fatalf("remaining %v", rest)
	}
	// The retry sends only what is left.
	if err := run(t, k, "j", actions.Remaining(err)); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if body := string(reqs[len(reqs)-1].Body); body != `{"GroupId":"g","MemberList":[{"Member_Account":"flaky"}]}` {
		t.Errorf("retry body %s", body)
	}
	if got := srv.GroupMembers("g"); !slices.Equal(got, []string{"already", "new", "flaky"}) {
		t.Errorf("members %v", got)
	}
}

func TestAddToGroupErrorClasses(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	srv.AddGroup("live", imtest.AVChatRoom)
	srv.AddGroup("g", imtest.Public)
	k := im.NewAddToGroup(newClient(t, srv))
	for _, tc := range []struct {
		group string
		reply imtest.Reply
		want  string
	}{
		{"nope", imtest.Reply{}, "permanent"},                                        // 10010: unknown group
		{"live", imtest.Reply{}, "permanent"},                                        // 10007: AVChatRoom
		{"g", imtest.Reply{ErrorCode: 10002, ErrorInfo: "internal"}, "transient 0s"}, // retry
		{"g", imtest.Reply{ErrorCode: 10014, ErrorInfo: "group full"}, "permanent"},
	} {
		srv.Script(tc.reply)
		err := run(t, k, "j-"+tc.group, map[string]any{"group": tc.group, "members": []any{"a", "b"}})
		if got := classOf(err); got != tc.want {
			t.Errorf("group %s, reply %+v: %s (%v), want %s", tc.group, tc.reply, got, err, tc.want)
			continue
		}
		if rest := remaining(t, err, "members"); !slices.Equal(rest, []string{"a", "b"}) {
			t.Errorf("remaining %v", rest)
		}
	}
	codes := map[string]int{}
	for _, r := range srv.Requests() {
		var b struct{ GroupId string }
		_ = json.Unmarshal(r.Body, &b)
		codes[b.GroupId] = r.ErrorCode
	}
	if codes["nope"] != 10010 || codes["live"] != 10007 {
		t.Errorf("codes %v", codes)
	}
}
