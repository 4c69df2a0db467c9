package im_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

func TestFriendUpdateSpec(t *testing.T) {
	spec := im.NewFriendUpdate(nil).Spec()
	groups := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = strings.Repeat("g", i%30+1)
		}
		return out
	}
	good := []map[string]any{
		{"from": "a", "to": "b", "remark": "r"},
		{"from": "a", "to": "b", "groups": []any{}},
		{"from": "a", "to": "b", "groups": groups(im.MaxFriendGroups)},
		{"from": "a", "to": "b", "custom": map[string]any{"source": "x", "Lvl_2": actions.Deferred{}}},
		{"from": actions.Deferred{}, "to": actions.Deferred{}, "remark": actions.Deferred{}},
		{"from": "a", "to": "b", "remark": strings.Repeat("é", 48)},
	}
	for _, p := range good {
		if _, err := spec.Check(p); err != nil {
			t.Errorf("Check(%v): %v", p, err)
		}
	}
	bad := map[string]map[string]any{
		"remark: nothing to update":                     {"from": "a", "to": "b"},
		"from: must not be empty":                       {"from": "", "to": "b", "remark": "r"},
		"to: required":                                  {"from": "a", "remark": "r"},
		"remark: 97 bytes":                              {"from": "a", "to": "b", "remark": strings.Repeat("x", 97)},
		"groups: 33 items, more than the 32":            {"from": "a", "to": "b", "groups": groups(33)},
		"groups: item 2: a friend group's name":         {"from": "a", "to": "b", "groups": []any{"ok", strings.Repeat("x", 31)}},
		"groups: item 1: a friend group's name":         {"from": "a", "to": "b", "groups": []any{""}},
		"groups: want list of strings, got string":      {"from": "a", "to": "b", "groups": "vip"},
		`custom.source-x: custom field name "source-x"`: {"from": "a", "to": "b", "custom": map[string]any{"source-x": "v"}},
		`custom.longername: custom field name`:          {"from": "a", "to": "b", "custom": map[string]any{"longername": "v"}},
		"custom.src: 501 bytes":                         {"from": "a", "to": "b", "custom": map[string]any{"src": strings.Repeat("x", 501)}},
		"custom.src: want string, got map":              {"from": "a", "to": "b", "custom": map[string]any{"src": map[string]any{}}},
		"custom: want map of strings, got list":         {"from": "a", "to": "b", "custom": []any{"x"}},
		"Tag_SNS_IM_Remark: unknown parameter":          {"from": "a", "to": "b", "Tag_SNS_IM_Remark": "x"},
	}
	for want, p := range bad {
		if _, err := spec.Check(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
}

func TestFriendUpdate(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendUpdate(newClient(t, srv))
	err := run(t, k, "j", map[string]any{"from": "official", "to": "alice", "remark": "VIP Alice",
		"groups": []any{"new-users", "vip"}, "custom": map[string]any{"source": "qr", "Camp": "spring"}})
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v4/sns/friend_update" {
		t.Fatalf("requests %+v", reqs)
	}
	want := `{"From_Account":"official","UpdateItem":[{"To_Account":"alice","SnsItem":[` +
		`{"Tag":"Tag_SNS_IM_Remark","Value":"VIP Alice"},{"Tag":"Tag_SNS_IM_Group","Value":["new-users","vip"]},` +
		`{"Tag":"Tag_SNS_Custom_Camp","Value":"spring"},{"Tag":"Tag_SNS_Custom_source","Value":"qr"}]}]}`
	if string(reqs[0].Body) != want {
		t.Errorf("body %s\nwant %s", reqs[0].Body, want)
	}
	got := srv.Friend("official", "alice")
	wantTags := map[string]any{"Tag_SNS_IM_Remark": "VIP Alice", "Tag_SNS_IM_Group": []string{"new-users", "vip"},
		"Tag_SNS_Custom_source": "qr", "Tag_SNS_Custom_Camp": "spring"}
	if !reflect.DeepEqual(got, wantTags) {
		t.Errorf("friend %v, want %v", got, wantTags)
	}
}

// DoMerged sends one request per from, with one item per job; a friend
// updated twice goes to a second request, after the first.
func TestFriendUpdateMerged(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendUpdate(newClient(t, srv))
	var jobs []actions.Job
	var params []map[string]any
	add := func(from, to, remark string) {
		p := map[string]any{"from": from, "to": to, "remark": remark}
		checked, err := k.Spec().Check(p)
		if err != nil {
			t.Fatal(err)
		}
		if k.MergeKey(p) != from {
			t.Fatalf("MergeKey %q", k.MergeKey(p))
		}
		jobs = append(jobs, actions.Job{ID: from + to + remark, Action: "im.friend_update", Params: p})
		params = append(params, checked)
	}
	add("official", "alice", "1")
	add("official", "bob", "2")
	add("other", "alice", "3")
	add("official", "alice", "4")
	add("official", "carol", "5")
	errs := k.DoMerged(context.Background(), jobs, params)
	for i, err := range errs {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	var bodies []string
	for _, r := range srv.Requests() {
		bodies = append(bodies, string(r.Body))
	}
	item := func(to, remark string) string {
		return `{"To_Account":"` + to + `","SnsItem":[{"Tag":"Tag_SNS_IM_Remark","Value":"` + remark + `"}]}`
	}
	want := []string{
		`{"From_Account":"official","UpdateItem":[` + item("alice", "1") + "," + item("bob", "2") + "," + item("carol", "5") + `]}`,
		`{"From_Account":"official","UpdateItem":[` + item("alice", "4") + `]}`,
		`{"From_Account":"other","UpdateItem":[` + item("alice", "3") + `]}`,
	}
	if !reflect.DeepEqual(bodies, want) {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
	if r := srv.Friend("official", "alice")["Tag_SNS_IM_Remark"]; r != "4" {
		t.Errorf("the later update did not win: %v", r)
	}
}

// Each job gets its own friend's result: 30008 is transient, other codes
// as classified; a whole-request error is every job's.
func TestFriendUpdateResults(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendUpdate(newClient(t, srv))
	var jobs []actions.Job
	var params []map[string]any
	for _, to := range []string{"ok", "conflict", "gone"} {
		p := map[string]any{"from": "official", "to": to, "remark": "r"}
		checked, _ := k.Spec().Check(p)
		jobs, params = append(jobs, actions.Job{ID: to, Params: p}), append(params, checked)
	}
	srv.Script(imtest.Reply{Accounts: map[string]int{"conflict": 30008, "gone": 30003}})
	errs := k.DoMerged(context.Background(), jobs, params)
	if got := []string{classOf(errs[0]), classOf(errs[1]), classOf(errs[2])}; !reflect.DeepEqual(got, []string{"ok", "transient 0s", "permanent"}) {
		t.Errorf("classes %v: %v", got, errs)
	}
	if len(srv.FriendUpdates()) != 1 {
		t.Errorf("updates %+v", srv.FriendUpdates())
	}
	for _, tc := range []struct {
		code int
		want string
	}{{30008, "transient 0s"}, {30006, "transient 0s"}, {30001, "permanent"}, {60011, "transient 1s"}} {
		srv.Script(imtest.Reply{ErrorCode: tc.code, ErrorInfo: "scripted"})
		errs := k.DoMerged(context.Background(), jobs[:2], params[:2])
		for _, err := range errs {
			if classOf(err) != tc.want {
				t.Errorf("code %d: %s (%v), want %s", tc.code, classOf(err), err, tc.want)
			}
		}
	}
}
