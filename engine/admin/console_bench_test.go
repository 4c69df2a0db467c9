package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// fillRing records n events as the engine would: half Prev adds (some
// denied), half accepted friend requests with their jobs.
func fillRing(f *adminFixture, n int) {
	set := f.reloader.Current()
	for i := range n {
		id := strconv.Itoa(i)
		cb := &imcallback.Callback{ID: "cb" + id, Command: imevent.CmdFriendAdd, Events: []imevent.Event{{
			CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_response", From_Account: "user_" + id, To_Account: "user_" + strconv.Itoa(i+1)}}}
		if i%2 == 0 {
			cb.Command = imevent.CmdPrevFriendAdd
			cb.Events[0].CallbackCommand, cb.Events[0].AddWording = cb.Command, "hello"
			if i%10 == 0 {
				cb.Events[0].AddWording = "cheap loan"
			}
		}
		ms, errs := set.Match(&cb.Events[0])
		var jobs []queue.Job
		var items []imcallback.ResultItem
		for mi, m := range ms {
			for ai, a := range m.Actions {
				if !a.Sync {
					jobs = append(jobs, queue.Job{CallbackID: cb.ID, Job: actions.Job{ID: cb.ID + "-0-" + strconv.Itoa(mi) + "-" + strconv.Itoa(ai), Rule: m.Rule, Action: a.Kind}})
				}
			}
		}
		if cb.Command == imevent.CmdPrevFriendAdd {
			d := rules.DecisionOf(ms)
			items = []imcallback.ResultItem{{ResultCode: d.Code, ResultInfo: d.Reason}}
		}
		f.ring.Record(set, cb, [][]rules.Match{ms}, [][]rules.RuleError{errs}, items, jobs, nil, nil)
	}
}

// BenchmarkConsolePages renders each page with a full default recording
// (10 000 events); the bar is 100 ms a page.
func BenchmarkConsolePages(b *testing.B) {
	f := newAdminFixture(b)
	q, err := queue.Open(context.Background(), queue.Config{DataDir: b.TempDir(), RecordEvents: record.DefaultSize})
	if err != nil {
		b.Fatal(err)
	}
	f.ring = record.New(q, record.Options{Rules: f.reloader.Current})
	defer func() {
		f.ring.Close()
		_ = q.Stop(5 * time.Second)
	}()
	f.console.Events = f.ring
	fillRing(f, record.DefaultSize)
	f.ring.Flush(context.Background())
	page, _, err := f.ring.List(context.Background(), record.Filter{}, 0, 1)
	if err != nil || len(page) != 1 {
		b.Fatal(page, err)
	}
	for _, path := range []string{"/", "/ui/rules", "/ui/events", "/ui/events?account=user_17", "/ui/events?outcome=failed",
		"/ui/events?rule=deny-spam&outcome=matched", "/ui/events/" + strconv.FormatUint(page[0].ID, 10), "/ui/try", "/ui/dlq"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Host, req.RemoteAddr = "127.0.0.1", "127.0.0.1:1" // the Guard's loopback
				f.srv.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d %s", path, w.Code, w.Body)
				}
			}
		})
	}
}
