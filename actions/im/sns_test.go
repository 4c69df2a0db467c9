package im_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

func TestSnsSpecs(t *testing.T) {
	for _, k := range []actions.Kind{im.NewFriendAdd(nil), im.NewFriendDelete(nil), im.NewBlacklistAdd(nil)} {
		spec := k.Spec()
		good := []map[string]any{
			{"from": "official", "to": []any{"a", "b"}},
			{"from": actions.Deferred{}, "to": []any{actions.Deferred{}}},
			{"from": "official", "to": accounts("u", im.MaxSnsJob)},
		}
		for _, p := range good {
			if _, err := spec.Check(p); err != nil {
				t.Errorf("%s: Check(%v): %v", spec.Name, p, err)
			}
		}
		bad := map[string]map[string]any{
			"from: required":                       {"to": []any{"a"}},
			"from: must not be empty":              {"from": "", "to": []any{"a"}},
			"to: required":                         {"from": "o"},
			"to: 0 items":                          {"from": "o", "to": []any{}},
			"to: 1001 items, more than the 1000":   {"from": "o", "to": accounts("u", im.MaxSnsJob+1)},
			"to: item 1 is empty":                  {"from": "o", "to": []any{""}},
			"To_Account: unknown parameter":        {"from": "o", "to": []any{"a"}, "To_Account": "a"},
			"to: want list of strings, got string": {"from": "o", "to": "a"},
		}
		for want, p := range bad {
			if _, err := spec.Check(p); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: Check(%v) = %v, want an error containing %q", spec.Name, p, err, want)
			}
		}
	}
	spec := im.NewFriendAdd(nil).Spec()
	for want, p := range map[string]map[string]any{
		"add_type":         {"from": "o", "to": []any{"a"}, "add_type": "Add_Type_Both"},
		"remark: 97 bytes": {"from": "o", "to": []any{"a"}, "remark": strings.Repeat("x", 97)},
		"group: 31 bytes":  {"from": "o", "to": []any{"a"}, "group": strings.Repeat("x", 31)},
		"source":           {"from": "o", "to": []any{"a"}, "source": "AddSource_Type_x"},
	} {
		if _, err := spec.Check(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("friend_add: Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
	if _, err := im.NewFriendDelete(nil).Spec().Check(map[string]any{"from": "o", "to": []any{"a"}, "delete_type": "Delete_Type_Both"}); err == nil {
		t.Error("friend_delete took delete_type Delete_Type_Both")
	}
}

// runEvent runs k for a job of the given event.
func runEvent(t *testing.T, k actions.Kind, event string, params map[string]any) error {
	t.Helper()
	p, err := k.Spec().Check(params)
	if err != nil {
		t.Fatalf("Check(%v): %v", params, err)
	}
	job := actions.Job{ID: "j", Rule: "r", Action: k.Spec().Name, Params: params, Event: json.RawMessage(event)}
	return k.Do(context.Background(), job, p)
}

func bodies(srv *imtest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.Path+" "+string(r.Body))
	}
	return out
}

func TestFriendAdd(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendAdd(newClient(t, srv))
	err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"alice", "bob", "alice"},
		"remark": "new", "group": "new-users", "wording": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	item := func(to string) string {
		return `{"To_Account":"` + to + `","Remark":"new","GroupName":"new-users","AddSource":"AddSource_Type_Server","AddWording":"hi"}`
	}
	want := []string{`/v4/sns/friend_add {"From_Account":"official","AddFriendItem":[` + item("alice") + "," + item("bob") +
		`],"AddType":"Add_Type_Both","ForceAddFlags":0}`}
	if got := bodies(srv); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, pair := range [][2]string{{"official", "alice"}, {"alice", "official"}, {"official", "bob"}} {
		if !srv.IsFriend(pair[0], pair[1]) {
			t.Errorf("%s → %s: not friends", pair[0], pair[1])
		}
	}
	// single, forced, chunked at 100.
	srv2 := imtest.NewServer(t, imtest.Options{})
	k = im.NewFriendAdd(newClient(t, srv2))
	if err := run(t, k, "j", map[string]any{"from": "official", "to": accounts("u", 150), "add_type": "single", "force": true}); err != nil {
		t.Fatal(err)
	}
	reqs := srv2.Requests()
	if len(reqs) != 2 || !bytes.Contains(reqs[0].Body, []byte(`"AddType":"Add_Type_Single","ForceAddFlags":1`)) {
		t.Errorf("requests %d: %s", len(reqs), reqs[0].Body)
	}
	if srv2.IsFriend("u000", "official") || !srv2.IsFriend("official", "u149") {
		t.Error("single add: wrong friendships")
	}
}

// Per-account outcomes: 30539 (pending) is done, 30006 retried alone,
// 30516 failed for good (dead-lettered apart).
func TestFriendAddResults(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendAdd(newClient(t, srv))
	srv.Script(imtest.Reply{Accounts: map[string]int{"pending": 30539, "busy": 30006, "refuses": 30516}})
	err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"ok", "pending", "busy", "refuses"}})
	if classOf(err) != "transient 0s" {
		t.Fatalf("%s: %v", classOf(err), err)
	}
	if got := remaining(t, err, "to"); !reflect.DeepEqual(got, []string{"busy"}) {
		t.Errorf("remaining %v", got)
	}
	ab := actions.Abandoned(err)
	if ab == nil || !reflect.DeepEqual(ab["to"], []string{"refuses"}) {
		t.Errorf("abandoned %v", ab)
	}
	if !strings.Contains(err.Error(), "refuses (30516)") {
		t.Errorf("error does not name the code: %v", err)
	}
	// A whole request refused for an unknown account is narrowed to it.
	srv.Unknown("ghost")
	err = run(t, k, "j2", map[string]any{"from": "official", "to": []any{"a", "ghost", "b"}})
	if classOf(err) != "permanent" || !reflect.DeepEqual(actions.Remaining(err)["to"], []string{"ghost"}) {
		t.Errorf("%s: %v", classOf(err), err)
	}
	if !srv.IsFriend("official", "a") || !srv.IsFriend("official", "b") {
		t.Error("the known accounts were not added")
	}
}

// The loop guard: an add friendflow's own admin made produces no
// friend_add; another admin's add, or a user's, does.
func TestFriendAddSkipsOwnAdminsEvents(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	var logs bytes.Buffer
	c := newClient(t, srv, func(cfg *im.Config) { cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	k := im.NewFriendAdd(c)
	params := map[string]any{"from": "official", "to": []any{"alice"}}
	own := `{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"official","Admin_Account":"` + imtest.DefaultAdmin + `"}`
	err := runEvent(t, k, own, params)
	if why, skipped := actions.Skipped(err); !skipped || !strings.Contains(why, "no add loop") {
		t.Fatalf("Do = %v, want a skip saying why", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests for an event of friendflow's own admin", n)
	}
	if !strings.Contains(logs.String(), "skipped") || !strings.Contains(logs.String(), "no add loop") {
		t.Errorf("no log line: %s", logs.String())
	}
	for _, ev := range []string{
		`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"official","Admin_Account":""}`,
		`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"official","Admin_Account":"other_admin"}`,
	} {
		if err := runEvent(t, k, ev, params); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestFriendDelete(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewFriendDelete(newClient(t, srv))
	srv.Befriend("official", "alice")
	srv.Befriend("alice", "official")
	srv.Befriend("official", "bob")
	srv.Befriend("bob", "official")
	// gone was never a friend: 31704, done.
	if err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"alice", "gone"}}); err != nil {
		t.Fatal(err)
	}
	if err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"bob"}, "delete_type": "single"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`/v4/sns/friend_delete {"From_Account":"official","To_Account":["alice","gone"],"DeleteType":"Delete_Type_Both"}`,
		`/v4/sns/friend_delete {"From_Account":"official","To_Account":["bob"],"DeleteType":"Delete_Type_Single"}`,
	}
	if got := bodies(srv); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if srv.IsFriend("official", "alice") || srv.IsFriend("alice", "official") || srv.IsFriend("official", "bob") || !srv.IsFriend("bob", "official") {
		t.Error("wrong friendships after the deletes")
	}
	srv.Script(imtest.Reply{Accounts: map[string]int{"a": 31707, "b": 30003}})
	err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"a", "b"}})
	if classOf(err) != "transient 1m0s" || !reflect.DeepEqual(remaining(t, err, "to"), []string{"a"}) {
		t.Errorf("%s: %v", classOf(err), err)
	}
}

func TestBlacklistAdd(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	k := im.NewBlacklistAdd(newClient(t, srv))
	srv.Befriend("official", "spammer")
	srv.Befriend("spammer", "official")
	if err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"spammer"}}); err != nil {
		t.Fatal(err)
	}
	if !srv.Blocked("official", "spammer") || srv.IsFriend("spammer", "official") {
		t.Error("not blocked, or still friends")
	}
	// Again: already blocked (30001 Err_SNS_BlackListAdd_Already_Exist) is done.
	if err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"spammer"}}); err != nil {
		t.Fatalf("already blocked: %v", err)
	}
	want := `/v4/sns/black_list_add {"From_Account":"official","To_Account":["spammer"]}`
	if got := bodies(srv); len(got) != 2 || got[0] != want {
		t.Errorf("requests %v", got)
	}
	// 30001 with another meaning (a parameter error) is not done; 30013
	// (blocklist full) fails for good too.
	srv.Script(imtest.Reply{Accounts: map[string]int{"x": 30001, "y": 30013}})
	err := run(t, k, "j", map[string]any{"from": "official", "to": []any{"x", "y"}})
	if classOf(err) != "permanent" || !reflect.DeepEqual(actions.Remaining(err)["to"], []string{"x", "y"}) {
		t.Errorf("%s: %v", classOf(err), err)
	}
}

// Each of the three APIs has its own rate budget.
func TestSnsBudgets(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	c := newClient(t, srv, func(cfg *im.Config) {
		cfg.APIRates = map[string]float64{im.FriendAddPath: 3, im.FriendDeletePath: 4, im.BlacklistAddPath: 5}
	})
	for api, want := range map[string]float64{im.FriendAddPath: 3, im.FriendDeletePath: 4, im.BlacklistAddPath: 5} {
		if got := float64(c.Budget(api).Limit()); got != want {
			t.Errorf("%s: %v, want %v", api, got, want)
		}
	}
}
