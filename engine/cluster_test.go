package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// TestTwoEnginesShareAClusterThroughFailover is the several-replicas
// promise: two friendflow engines on one three-node JetStream cluster,
// the same friendships arriving at both, the stream leader killed
// mid-run. Every accepted job runs, and each friendship is welcomed once.
func TestTwoEnginesShareAClusterThroughFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(welcomeRules), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recordKind{}
	log := slog.New(slog.DiscardHandler)
	engines := make([]*Engine, 2)
	for i := range engines {
		var reg actions.Registry
		if err := reg.Register(rec); err != nil {
			t.Fatal(err)
		}
		set, err := rules.Load(dir, rules.Options{Registry: &reg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		q, err := queue.Open(ctx, queue.Config{URL: cluster.URLs, Replicas: 3, Registry: &reg, Logger: log})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
		runCtx, stop := context.WithCancel(context.Background())
		t.Cleanup(stop)
		go func() { _ = q.Run(runCtx) }()
		engines[i] = &Engine{Rules: func() *rules.Set { return set }, Queue: q, Logger: log}
	}

	const friendships = 200
	var retries atomic.Int64
	accepted := make([][]string, 2) // callback ids per engine
	var mu sync.Mutex
	handle := func(e int, f int) {
		body := fmt.Sprintf(`{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_response","PairList":[
			{"From_Account":"a%d","To_Account":"b%d","Initiator_Account":"a%d"},
			{"From_Account":"b%d","To_Account":"a%d","Initiator_Account":"a%d"}]}`, f, f, f, f, f, f)
		deadline := time.Now().Add(30 * time.Second)
		for {
			cb := newCB(imevent.CmdFriendAdd)
			cb.ID = imcallback.NewID()
			if err := imcallback.Decode([]byte(body), cb); err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := engines[e].Handle(ctx, cb)
			cancel()
			if err == nil {
				mu.Lock()
				accepted[e] = append(accepted[e], cb.ID)
				mu.Unlock()
				return
			}
			// Answered FAIL: Tencent (with after-callback retry on) or an
			// operator sends it again.
			retries.Add(1)
			if time.Now().After(deadline) {
				t.Errorf("friendship %d on engine %d: %v", f, e, err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range 8 {
		wg.Go(func() {
			for f := range next {
				handle(w%2, f)   // one direction's callback to one replica,
				handle(1-w%2, f) // the same friendship to the other
			}
		})
	}
	for f := range friendships {
		if f == friendships/3 {
			t.Logf("killed stream leader %s", cluster.KillStreamLeader(t, "FRIENDFLOW_JOBS"))
		}
		next <- f
	}
	close(next)
	wg.Wait()

	accepts := len(accepted[0]) + len(accepted[1])
	wantAudit := accepts * 2 // audit-every-add runs for both pairs of every accepted callback
	deadline := time.Now().Add(60 * time.Second)
	var audits, welcomes map[string]int
	for time.Now().Before(deadline) {
		audits, welcomes = map[string]int{}, map[string]int{}
		for _, j := range rec.snapshot() {
			note := j.Params["note"].(string)
			if strings.HasPrefix(note, "welcome") {
				welcomes[note]++
			} else {
				audits[j.ID]++
			}
		}
		if len(audits) >= wantAudit && len(welcomes) >= friendships {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	dups := 0
	for _, n := range welcomes {
		dups += n - 1
	}
	t.Logf("%d callbacks accepted (%d retried after FAIL), %d audit jobs done of %d, %d friendships welcomed, %d repeated welcome runs",
		accepts, retries.Load(), len(audits), wantAudit, len(welcomes), dups)
	if len(audits) != wantAudit {
		t.Errorf("lost %d accepted audit jobs", wantAudit-len(audits))
	}
	if len(welcomes) != friendships {
		t.Errorf("%d of %d friendships welcomed", len(welcomes), friendships)
	}
	// A welcome job may run twice after a failover (at-least-once; IM's
	// dedup absorbs it), but once must have let only one job be stored per
	// friendship: every welcome run is the same job id.
	ids := map[string]map[string]bool{}
	for _, j := range rec.snapshot() {
		if note := j.Params["note"].(string); strings.HasPrefix(note, "welcome") {
			if ids[note] == nil {
				ids[note] = map[string]bool{}
			}
			ids[note][j.ID] = true
		}
	}
	for note, set := range ids {
		if len(set) > 1 {
			t.Errorf("%s: %d different welcome jobs stored across the engines", note, len(set))
		}
	}
}
