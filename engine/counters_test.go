package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// floodRules deny an account's friend requests past the 20th in 10
// minutes; the reason carries the count, so a test sees which request
// each deny was.
const floodRules = `
counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
rules:
  - name: deny-floods
    on: Sns.CallbackPrevFriendAdd
    when: count("requests_by_sender", From_Account) > 20
    actions:
      - deny: { code: 38001, reason: 'request ${ count("requests_by_sender", From_Account) }' }
`

func prevAddBody(from, to string) []byte {
	return fmt.Appendf(nil, `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":%q,"From_Account":%q,"FriendItem":[{"To_Account":%q,"AddSource":"AddSource_Type_Android"}],"AddType":"Add_Type_Both"}`, from, from, to)
}

// counterEngine is an engine on q with the flood rules and counters in
// q's JetStream.
func counterEngine(t testing.TB, q *queue.Queue, src string) (*Engine, *state.Counters) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: builtin.Registry(builtin.Deps{})})
	if err != nil {
		t.Fatal(err)
	}
	ctrs := state.NewCounters(q)
	return &Engine{Rules: func() *rules.Set { return set }, Queue: q, Counters: ctrs,
		Logger: slog.New(slog.DiscardHandler), DecisionTimeout: 10 * time.Second}, ctrs
}

// TestTwoReplicasCountOneAccountExactly is docs/rules.md's promise under
// concurrency: two engines on one three-node JetStream cluster, 10 000
// Prev requests of one account split between them, eight at a time. No
// increment is lost or doubled: every request sees its own count, the
// counter ends at 10 000, and exactly the 21st and later are denied.
func TestTwoReplicasCountOneAccountExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	log := slog.New(slog.DiscardHandler)
	var engines [2]*Engine
	var ctrs *state.Counters
	for i := range engines {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		q, err := queue.Open(ctx, queue.Config{URL: cluster.URLs, Replicas: 3, Registry: builtin.Registry(builtin.Deps{}), Logger: log})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
		engines[i], ctrs = counterEngine(t, q, floodRules)
		// A decision the cluster cannot make in time is told apart from
		// an allow: fail closed, with a code of its own.
		engines[i].FailClosed, engines[i].FailCode = true, 38999
	}
	const requests = 10_000
	var (
		mu        sync.Mutex
		denied    []int // the count each deny carried
		durations []time.Duration
		allowed   int
		undecided int
		wg        sync.WaitGroup
		next      = make(chan int)
	)
	start := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for n := range next {
				cb := newCB(imevent.CmdPrevFriendAdd)
				cb.ID = imcallback.NewID()
				if err := imcallback.Decode(prevAddBody("eve", "t"+strconv.Itoa(n)), cb); err != nil {
					t.Error(err)
					return
				}
				began := time.Now()
				reply, err := engines[(w+n)%2].Handle(context.Background(), cb)
				took := time.Since(began)
				if err != nil || len(reply.ResultItem) != 1 {
					t.Errorf("request %d: %v %+v", n, err, reply)
					return
				}
				mu.Lock()
				durations = append(durations, took)
				switch it := reply.ResultItem[0]; it.ResultCode {
				case 38001:
					c, _ := strconv.Atoi(strings.TrimPrefix(it.ResultInfo, "request "))
					denied = append(denied, c)
				case 38999:
					undecided++
				default:
					allowed++
				}
				mu.Unlock()
			}
		})
	}
	for n := range requests {
		next <- n
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	slices.Sort(denied)
	slices.Sort(durations)
	t.Logf("%d requests in %v (%.0f/s): %d allowed, %d denied, %d undecided; reply p50 %v, p99 %v, max %v", requests, took, requests/took.Seconds(),
		allowed, len(denied), undecided, durations[len(durations)/2], durations[len(durations)*99/100], durations[len(durations)-1])
	if undecided > 0 {
		// A starved machine (the race detector beside other packages' tests
		// on two cores) can stall the in-process cluster past the decision's
		// 10 s. What still holds: no count is seen twice, and nothing past
		// the 20th is let through. The exact count needs every decision.
		if allowed > 20 {
			t.Errorf("%d allowed, want at most 20", allowed)
		}
		for i := 1; i < len(denied); i++ {
			if denied[i] == denied[i-1] || denied[i-1] < 21 {
				t.Fatalf("the denies carried count %d twice or under 21: %v…", denied[i-1], denied[max(0, i-3):i+1])
			}
		}
		t.Skipf("%d of %d decisions were not made in time on this machine: exactness not checked", undecided, requests)
	}
	if allowed != 20 || len(denied) != requests-20 {
		t.Fatalf("allowed %d and denied %d, want 20 and %d", allowed, len(denied), requests-20)
	}
	for i, c := range denied {
		if c != 21+i {
			t.Fatalf("the denies carried counts %v…; want 21, 22, … 10000, each once", denied[max(0, i-3):i+1])
		}
	}
	set := engines[0].Rules()
	n, err := ctrs.Get(context.Background(), set.Counters()[0], "eve", time.Now())
	if err != nil || n != requests {
		t.Fatalf("counter: %d, %v; want %d", n, err, requests)
	}
}

// TestUnreachableCounterStateFollowsTheFailChoice: with JetStream gone,
// a rule reading a counter cannot decide; the target gets the engine's
// fail-open or fail-closed answer, counted and logged, within the
// decision's time.
func TestUnreachableCounterStateFollowsTheFailChoice(t *testing.T) {
	q, err := queue.Open(context.Background(), queue.Config{DataDir: filepath.Join(t.TempDir(), "data"),
		Registry: builtin.Registry(builtin.Deps{}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, closed := range []bool{false, true} {
		e, _ := counterEngine(t, q, floodRules)
		e.FailClosed, e.FailCode, e.DecisionTimeout = closed, 38999, 2*time.Second
		var logs syncBuf
		e.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		e.Metrics = NewMetrics("test", "test")
		cb := newCB(imevent.CmdPrevFriendAdd)
		cb.ID = imcallback.NewID()
		if err := imcallback.Decode(prevAddBody("eve", "bob"), cb); err != nil {
			t.Fatal(err)
		}
		if closed {
			// The store goes away between the two runs.
			if err := q.Stop(5 * time.Second); err != nil {
				t.Fatal(err)
			}
		} else {
			// A counter store that cannot be reached: no store at all.
			e.Counters = nil
		}
		start := time.Now()
		reply, err := e.Handle(context.Background(), cb)
		if err != nil || len(reply.ResultItem) != 1 {
			t.Fatalf("closed=%t: %v %+v", closed, err, reply)
		}
		want, decision := 0, "fail_open"
		if closed {
			want, decision = 38999, "fail_closed"
		}
		if got := reply.ResultItem[0].ResultCode; got != want {
			t.Errorf("closed=%t: ResultCode %d, want %d", closed, got, want)
		}
		var m dto.Metric
		if err := e.Metrics.Decisions.WithLabelValues(imevent.CmdPrevFriendAdd, decision).Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
			t.Errorf("closed=%t: friendflow_decisions_total{decision=%q} = %v", closed, decision, m.GetCounter().GetValue())
		}
		if !strings.Contains(logs.String(), "counter state unavailable") || !strings.Contains(logs.String(), `"decision":"`+decision+`"`) {
			t.Errorf("closed=%t: logs lack the failure:\n%s", closed, logs.String())
		}
		t.Logf("closed=%t: decided in %v", closed, time.Since(start))
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
