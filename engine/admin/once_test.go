package admin

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A callback whose once key an earlier callback claimed shows the skip,
// with the key, when and by which callback it was first seen, in GET
// /events, the export and the console's event page (escaped): not only
// in a log line.
func TestOnceSkipShowsWhereTheEventIs(t *testing.T) {
	f := newAdminFixture(t)
	const onceRule = `rules:
  - name: greet
    on: Sns.CallbackPrevFriendAdd
    once:
      key: 'From_Account + "|<" + To_Account + ">"'
      for: 1h
    actions:
      - fail: {}
`
	if err := os.WriteFile(filepath.Join(f.dir, "once.yaml"), []byte(onceRule), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.reloader.Reload("test"); err != nil {
		t.Fatal(err)
	}
	const body = `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"m","From_Account":"m",
	  "FriendItem":[{"To_Account":"a","AddWording":"hi"}],"EventTime":1}`
	before := time.Now().Add(-time.Second)
	f.signedPost(t, imevent.CmdPrevFriendAdd, body)
	f.signedPost(t, imevent.CmdPrevFriendAdd, body)

	all := f.events(t, "")
	if len(all.Events) != 2 {
		t.Fatalf("events %+v", all.Events)
	}
	second, first := all.Events[0], all.Events[1]
	if first.OnceSkipped != nil || len(first.Jobs) != 1 || first.Jobs[0].Rule != "greet" {
		t.Fatalf("first callback: jobs %+v, skipped %+v", first.Jobs, first.OnceSkipped)
	}
	if len(second.Jobs) != 0 || len(second.OnceSkipped) != 1 {
		t.Fatalf("second callback: jobs %+v, skipped %+v", second.Jobs, second.OnceSkipped)
	}
	s := second.OnceSkipped[0]
	if s.Rule != "greet" || s.Key != "m|<a>" || s.FirstCallback != first.CallbackID || s.FirstCallback == second.CallbackID ||
		s.FirstSeen.Before(before) || s.FirstSeen.After(time.Now()) {
		t.Fatalf("skip %+v; first callback %s", s, first.CallbackID)
	}

	status, export := f.do(t, http.MethodGet, "/events/export", "")
	events, err := record.ReadJSONL([]byte(export))
	if status != 200 || err != nil || len(events) != 2 || len(events[1].OnceSkipped) != 1 || events[1].OnceSkipped[0] != s {
		t.Fatalf("export: %d %v %s", status, err, export)
	}

	secondPage := "/ui/events/" + strconv.FormatUint(second.ID, 10)
	status, page, _ := f.page(t, nil, secondPage)
	for _, want := range []string{"Skipped by once", "<code>m|&lt;a&gt;</code>", "<code>" + first.CallbackID + "</code>",
		s.FirstSeen.UTC().Format("2006-01-02 15:04:05.000Z"), "once key <code>m|&lt;a&gt;</code>"} {
		if status != 200 || !strings.Contains(page, want) {
			t.Errorf("%s lacks %q:\n%s", secondPage, want, page)
		}
	}
	if strings.Contains(page, "m|<a>") {
		t.Error(secondPage + " shows the key unescaped")
	}
	if _, list, _ := f.page(t, nil, "/ui/events"); !strings.Contains(list, "greet: skipped by once") {
		t.Errorf("/ui/events lacks the skip:\n%s", list)
	}
	if !strings.Contains(page, "checked before the jobs are stored") {
		t.Errorf("/ui/events/2's trace does not say the key is checked:\n%s", page)
	}

	// explain says the rule would check the key, rendered, without claiming it.
	status, answer := f.do(t, http.MethodPost, "/explain?command=Sns.CallbackPrevFriendAdd", `{"From_Account":"n","FriendItem":[{"To_Account":"b"}]}`)
	var ex []engine.EventExplanation
	if err := json.Unmarshal([]byte(answer), &ex); err != nil || status != 200 || len(ex) != 1 {
		t.Fatalf("POST /explain: %d %s", status, answer)
	}
	var greet *rules.RuleTrace
	for i := range ex[0].Rules {
		if ex[0].Rules[i].Rule == "greet" {
			greet = &ex[0].Rules[i]
		}
	}
	if greet == nil || greet.Once == nil || greet.Once.Key != "n|<b>" || !greet.Once.Checked || !strings.Contains(greet.Reason, `once key "n|<b>"`) {
		t.Fatalf("explain of greet: %+v", greet)
	}
	if first, err := f.q.Once(t.Context(), "greet\x00n|<b>", time.Hour); err != nil || !first {
		t.Fatalf("explain claimed the once key: first %v, %v", first, err)
	}
}
