package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// imEngine is the whole path a callback takes: real rules, the engine,
// the embedded JetStream queue (on a data directory that outlives a
// restart), the IM action kinds and the fake IM, with the event record
// and the metrics.
type imEngine struct {
	srv     *imtest.Server
	set     *rules.Set
	dataDir string
	ring    *record.Log
	metrics *Metrics
	eng     *Engine
	q       *queue.Queue
	stop    context.CancelFunc // the workers'; nil while they do not run
	url     string             // a cluster's, instead of the embedded server
}

func newIMEngine(t *testing.T, yaml string) *imEngine {
	t.Helper()
	return newIMEngineOn(t, yaml, imtest.NewServer(t, imtest.Options{}), "")
}

// newIMEngineOn is newIMEngine on the fake IM srv and, when url is not
// empty, on that JetStream cluster.
func newIMEngineOn(t *testing.T, yaml string, srv *imtest.Server, url string) *imEngine {
	t.Helper()
	c, err := im.NewClient(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry(builtin.Deps{IM: c})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := &imEngine{srv: srv, set: set, dataDir: filepath.Join(dir, "data"), metrics: NewMetrics("test", "test"), url: url}
	h.open(t)
	return h
}

// open opens the queue on the data directory and builds the engine on it.
func (h *imEngine) open(t *testing.T) {
	t.Helper()
	c, err := im.NewClient(h.srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry(builtin.Deps{IM: c})
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := queue.Config{DataDir: h.dataDir, Registry: reg, Logger: log, Workers: 4, RecordEvents: 1000,
		Hooks: record.Hooks(h.metrics.QueueHooks(), func() *record.Log { return h.ring })}
	if h.url != "" {
		cfg.DataDir, cfg.URL, cfg.Replicas = "", h.url, 3
	}
	q, err := queue.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ring := record.New(q, record.Options{Linger: time.Millisecond})
	t.Cleanup(func() {
		ring.Close()
		_ = q.Stop(5 * time.Second)
	})
	h.q, h.ring = q, ring
	h.eng = &Engine{Rules: func() *rules.Set { return h.set }, Queue: q, Logger: log, Metrics: h.metrics, Recorder: ring}
}

// run starts the workers.
func (h *imEngine) run() {
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go func() { _ = h.q.Run(ctx) }()
}

// restart stops the queue, as a deploy does, and opens it again on the
// same data directory: what survives is what JetStream stored.
func (h *imEngine) restart(t *testing.T) {
	t.Helper()
	if h.stop != nil {
		h.stop()
	}
	h.ring.Close() // what it holds is written first
	if err := h.q.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	h.open(t)
}

// handle sends one callback of cmd with the given PairList elements (JSON)
// and extra body fields, and fails the test unless it is answered OK.
func (h *imEngine) handle(t *testing.T, cmd, extra string, pairs ...string) {
	t.Helper()
	body := fmt.Sprintf(`{"CallbackCommand":%q,"PairList":[%s]%s}`, cmd, strings.Join(pairs, ","), extra)
	cb := newCB(cmd)
	cb.ID = imcallback.NewID()
	if err := imcallback.Decode([]byte(body), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Handle(context.Background(), cb); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
}

func pair(from, to string) string {
	return fmt.Sprintf(`{"From_Account":%q,"To_Account":%q,"Initiator_Account":%q}`, from, to, from)
}

// recordedJob returns the recorded job of rule on the event from→to of
// cmd, waiting until it has an outcome other than queued.
func (h *imEngine) recordedJob(t *testing.T, cmd, from, to, rule string) record.Job {
	t.Helper()
	var got record.Job
	eventually(t, 20*time.Second, fmt.Sprintf("the %s job of %s→%s to finish", rule, from, to), func() bool {
		ctx := context.Background()
		evs, _, _ := h.ring.List(ctx, record.Filter{Command: cmd, Account: from}, 0, 100)
		for _, e := range evs {
			if e.From != from || e.To != to {
				continue
			}
			e, _, _, _ = h.ring.Get(ctx, e.ID) // with what became of its jobs
			for _, j := range e.Jobs {
				if j.Rule == rule && j.Outcome != record.JobQueued {
					got = j
					return true
				}
			}
		}
		return false
	})
	return got
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sentTo are the texts of the messages the fake IM delivered to account.
func (h *imEngine) sentTo(account string) []string {
	var out []string
	for _, m := range h.srv.Messages() {
		if m.To == account {
			out = append(out, m.Text)
		}
	}
	return out
}

const followUpRules = `
rules:
  - name: follow-up
    actions:
      - im.send: { from: "${ To_Account }", to: "${ From_Account }", text: "tip for ${ From_Account }" }
        delay: 2s
        cancel_on: [Sns.CallbackFriendDelete]
`

// TestCancelOnDropsAFollowUpAfterAnUnfriend is issue 25's bar: a delayed
// im.send with cancel_on [Sns.CallbackFriendDelete] never reaches IM
// after the pair unfriends, in either direction, while a control pair's
// follow-up is sent, and so is that of a pair that unfriended before it
// became friends again. With restart, the queue is stopped and reopened
// between the unfriends and the due time: markers and jobs are in
// JetStream, not memory.
func TestCancelOnDropsAFollowUpAfterAnUnfriend(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			h := newIMEngine(t, followUpRules)
			if !restart {
				h.run()
			}
			// an old unfriend of g and h, before their friendship: it
			// must not cancel what came after it.
			h.handle(t, imevent.CmdFriendDelete, "", pair("g", "h"))
			added := time.Now()
			h.handle(t, imevent.CmdFriendAdd, `,"ClientCmd":"friend_add"`,
				pair("a", "b"), pair("c", "d"), pair("e", "f"), pair("g", "h"))
			// a→b unfriend the other way round, c→d the same way; e→f
			// (the control) stay friends.
			h.handle(t, imevent.CmdFriendDelete, "", pair("b", "a"))
			h.handle(t, imevent.CmdFriendDelete, "", pair("c", "d"))
			if !restart && time.Since(added) >= 2*time.Second {
				t.Skip("the unfriends took longer than the follow-ups' delay on this machine; nothing to check")
			}
			if restart {
				h.restart(t)
				h.run()
			}
			for _, who := range []string{"e", "g"} {
				eventually(t, 20*time.Second, "the follow-up to "+who, func() bool { return len(h.sentTo(who)) == 1 })
			}
			for _, c := range []struct{ from, to string }{{"a", "b"}, {"c", "d"}} {
				j := h.recordedJob(t, imevent.CmdFriendAdd, c.from, c.to, "follow-up")
				if j.Outcome != queue.OutcomeCancelled || !strings.Contains(j.LastError, "cancelled by Sns.CallbackFriendDelete") {
					t.Errorf("%s→%s's follow-up: recorded %+v, want cancelled by the unfriend", c.from, c.to, j)
				}
			}
			if j := h.recordedJob(t, imevent.CmdFriendAdd, "e", "f", "follow-up"); j.Outcome != record.JobDone {
				t.Errorf("the control pair's follow-up: recorded %+v, want done", j)
			}
			// A job is counted after IM has answered it, so the counts may
			// trail the send just seen; once all four are counted, no
			// cancelled follow-up can still be sent.
			wants := []string{
				`friendflow_jobs_total{action="im.send",outcome="cancelled"} 2`,
				`friendflow_jobs_total{action="im.send",outcome="done"} 2`,
			}
			var m string
			eventually(t, 20*time.Second, "the jobs counted", func() bool {
				m = scrape(t, h.metrics)
				return strings.Contains(m, wants[0]) && strings.Contains(m, wants[1])
			})
			for _, who := range []string{"a", "b", "c", "d"} {
				if got := h.sentTo(who); len(got) > 0 {
					t.Errorf("sent to %s after the unfriend: %q", who, got)
				}
			}
			if got := h.sentTo("e"); len(got) != 1 || got[0] != "tip for e" {
				t.Errorf("the control pair's follow-up: %q", got)
			}
			if !restart && !strings.Contains(m, `friendflow_cancel_markers_total{command="Sns.CallbackFriendDelete"} 3`) {
				t.Error("metrics do not count the three unfriends' markers")
			}
		})
	}
}

// TestCancelOnAcrossReplicas: two engines on one three-node JetStream
// cluster; the friendships arrive at one, the unfriend at the other, and
// whichever replica's worker takes the follow-up finds the marker.
func TestCancelOnAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	srv := imtest.NewServer(t, imtest.Options{})
	r0 := newIMEngineOn(t, followUpRules, srv, cluster.URLs)
	r1 := newIMEngineOn(t, followUpRules, srv, cluster.URLs)
	r0.run()
	r1.run()
	added := time.Now()
	r0.handle(t, imevent.CmdFriendAdd, `,"ClientCmd":"friend_add"`, pair("a", "b"), pair("e", "f"))
	r1.handle(t, imevent.CmdFriendDelete, "", pair("b", "a"))
	if time.Since(added) >= 2*time.Second {
		t.Skip("the unfriend took longer than the follow-ups' delay on this machine; nothing to check")
	}
	eventually(t, 20*time.Second, "the control pair's follow-up", func() bool { return len(r0.sentTo("e")) == 1 })
	cancelled := `friendflow_jobs_total{action="im.send",outcome="cancelled"} 1`
	eventually(t, 20*time.Second, "the cancelled follow-up to be counted", func() bool {
		return strings.Contains(scrape(t, r0.metrics), cancelled) || strings.Contains(scrape(t, r1.metrics), cancelled)
	})
	if got := r0.sentTo("a"); len(got) > 0 {
		t.Errorf("sent to a after the unfriend: %q", got)
	}
}
