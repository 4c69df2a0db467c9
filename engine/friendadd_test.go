package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions/im/imtest"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules/imevent"
)

// TestFriendAddNeverRunsForItsOwnAdminsEvent is issue 26's loop guard end
// to end: callbacks through the engine, the queue and the fake IM. An add
// that friendflow's own admin account made (Admin_Account is the
// --im-admin account) sends no friend_add, and its recorded job says it
// was skipped and why; a user's add, and another admin's, are added back.
func TestFriendAddNeverRunsForItsOwnAdminsEvent(t *testing.T) {
	h := newIMEngine(t, `
rules:
  - name: add-back
    when: To_Account == "official"
    actions:
      - im.friend_add: { from: official, to: ["${ From_Account }"] }
`)
	h.run()
	h.handle(t, imevent.CmdFriendAdd, `,"ClientCmd":"friend_add","Admin_Account":"`+imtest.DefaultAdmin+`"`, pair("alice", "official"))
	h.handle(t, imevent.CmdFriendAdd, `,"ClientCmd":"friend_add","Admin_Account":""`, pair("bob", "official"))
	h.handle(t, imevent.CmdFriendAdd, `,"ClientCmd":"friend_add","Admin_Account":"crm_admin"`, pair("carol", "official"))

	own := h.recordedJob(t, imevent.CmdFriendAdd, "alice", "official", "add-back")
	if own.Outcome != record.JobSkipped || !strings.Contains(own.LastError, "friendflow's own admin account") {
		t.Errorf("the own admin's event: recorded %+v, want skipped saying why", own)
	}
	for _, who := range []string{"bob", "carol"} {
		if j := h.recordedJob(t, imevent.CmdFriendAdd, who, "official", "add-back"); j.Outcome != record.JobDone {
			t.Errorf("%s's add: recorded %+v, want done", who, j)
		}
	}
	var added []string
	for _, r := range h.srv.Requests() {
		if r.Path != "/v4/sns/friend_add" {
			continue
		}
		var body struct {
			AddFriendItem []struct{ To_Account string }
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, it := range body.AddFriendItem {
			added = append(added, it.To_Account)
		}
	}
	if strings.Join(added, ",") != "bob,carol" && strings.Join(added, ",") != "carol,bob" {
		t.Errorf("friend_add requests added %v, want bob and carol only", added)
	}
	if m := scrape(t, h.metrics); !strings.Contains(m, `friendflow_jobs_total{action="im.friend_add",outcome="skipped"} 1`) {
		t.Error("the skipped add is not counted")
	}
}
