package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Welcome jobs with and without profile(), end to end but for the send:
// the rule matched for each event, the jobs stored in the embedded queue,
// run by its workers, the profiles read from the fake IM's portrait_get
// (batched and cached by im.Profiles) and the text rendered; the action
// itself only records the text, so that what is measured is what
// profile() adds to a job.

const (
	welcomeJobs     = 10000
	welcomeAccounts = 1000
)

// textSink is an im.send stand-in that records the texts it was given.
type textSink struct {
	mu    sync.Mutex
	texts map[string]string // job id → text
	runs  atomic.Int64
}

func (s *textSink) Spec() actions.Spec {
	return actions.Spec{Name: "im.send", Params: []actions.Param{
		{Name: "to", Type: actions.String}, {Name: "from", Type: actions.String}, {Name: "text", Type: actions.String},
	}}
}

func (s *textSink) Do(_ context.Context, job actions.Job, params map[string]any) error {
	s.mu.Lock()
	s.texts[job.ID], _ = params["text"].(string)
	s.mu.Unlock()
	s.runs.Add(1)
	return nil
}

func welcomeRules(tb testing.TB, reg *actions.Registry, profile bool) *rules.Set {
	tb.Helper()
	text := "Hi ${ From_Account }, thanks for adding me!"
	if profile {
		text = "Hi ${ profile(From_Account).Nick ?? From_Account }, thanks for adding me!"
	}
	file := "rules:\n  - name: welcome\n    actions:\n      - im.send: {from: \"${ To_Account }\", to: \"${ From_Account }\", text: \"" + text + "\"}\n"
	path := filepath.Join(tb.TempDir(), "welcome.yaml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		tb.Fatal(err)
	}
	set, err := rules.Load(path, rules.Options{Registry: reg})
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// welcomeRig is a queue running the welcome rule's jobs, with the fake
// IM's profiles: account i of welcomeAccounts has the nick "Nick i" when i
// is even, and no profile when odd.
type welcomeRig struct {
	q        *Queue
	sink     *textSink
	set      *rules.Set
	srv      *imtest.Server
	profiles *im.Profiles
	running  sync.Once
	rounds   int
	retried  atomic.Int64
}

func newWelcomeRig(tb testing.TB, profile bool, pcfg im.ProfilesConfig) *welcomeRig {
	return newWelcomeRigSend(tb, profile, pcfg, false)
}

// newWelcomeRigSend is newWelcomeRig whose jobs, when send, are the real
// im.send to the fake IM (counted as they run, through the hooks).
func newWelcomeRigSend(tb testing.TB, profile bool, pcfg im.ProfilesConfig, send bool) *welcomeRig {
	tb.Helper()
	srv := imtest.NewServer(tb, imtest.Options{})
	for i := 0; i < welcomeAccounts; i += 2 {
		srv.SetProfile(welcomeAccount(i), map[string]any{"Tag_Profile_IM_Nick": "Nick " + strconv.Itoa(i)})
	}
	c, err := im.NewClient(srv.Config())
	if err != nil {
		tb.Fatal(err)
	}
	r := &welcomeRig{sink: &textSink{texts: map[string]string{}}, srv: srv}
	pcfg.Logger = testLogger(tb)
	r.profiles = im.NewProfiles(c, pcfg)
	reg := &actions.Registry{}
	kind := actions.Kind(r.sink)
	if send {
		kind = im.NewSend(c)
	}
	if err := reg.Register(kind); err != nil {
		tb.Fatal(err)
	}
	hooks := Hooks{JobFinished: func(_ *Job, outcome string, _ error, _ time.Duration) {
		if send && outcome == OutcomeDone {
			r.sink.runs.Add(1)
		}
		if outcome == OutcomeRetried {
			r.retried.Add(1)
		}
	}}
	r.set = welcomeRules(tb, reg, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.q, err = Open(ctx, Config{DataDir: tb.TempDir(), Registry: reg, Logger: testLogger(tb), Workers: DefaultWorkers, Hooks: hooks,
		Profiles: rules.NewResolver(r.profiles, nil)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.q.Stop(10 * time.Second) })
	return r
}

func welcomeAccount(i int) string { return fmt.Sprintf("user%04d", i) }

// run enqueues n welcome callbacks, one event each, event i from account
// i mod welcomeAccounts, from 16 producers, then starts the workers and
// waits until every job ran: a backlog, as after an outage or a burst
// faster than the workers, so that the requests do not depend on the
// producers' pace.
func (r *welcomeRig) run(tb testing.TB, n int) {
	tb.Helper()
	round := r.rounds
	r.rounds++
	base := r.sink.runs.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				ev := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: welcomeAccount(i % welcomeAccounts), To_Account: "official"}
				ms, errs := r.set.Match(&ev)
				if len(errs) > 0 || len(ms) != 1 {
					tb.Errorf("match: %v %v", ms, errs)
					return
				}
				id := "cb-" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
				a := ms[0].Actions[0]
				job := Job{Job: actions.Job{ID: actions.JobID(id, 0, 0, 0), Rule: "welcome", Action: a.Kind, Params: a.Params,
					Event: imevent.AppendEventJSON(nil, &ev)}}
				if err := r.q.Enqueue(context.Background(), id, []Job{job}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r.running.Do(func() { go r.q.Run(context.Background()) })
	deadline := time.Now().Add(5 * time.Minute)
	for r.sink.runs.Load() < base+int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d jobs ran", r.sink.runs.Load()-base, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *welcomeRig) portraitRequests() (ok, failed int) {
	for _, req := range r.srv.Requests() {
		if req.Path == "/v4/"+im.PortraitGetPath {
			if req.ErrorCode == 0 && req.HTTPStatus == 200 {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed
}

// TestWelcomeProfileRequests: 10 000 welcome jobs over 1 000 accounts read
// each profile once, in requests of up to 100 accounts: at most
// ⌈1000/100⌉ requests (plus retries of failed ones, none here), and every
// text names the account by its nick or, without one, by its id. The
// batches wait longer for accounts than by default, so that a pause of the
// loaded test machine cannot send one half full: what is tested is that
// batches fill, the cache holds, and nothing is read twice
// (BenchmarkWelcome reports the requests with the defaults).
func TestWelcomeProfileRequests(t *testing.T) {
	r := newWelcomeRig(t, true, im.ProfilesConfig{Window: 500 * time.Millisecond, MaxWait: 5 * time.Second})
	r.run(t, welcomeJobs)
	ok, failed := r.portraitRequests()
	limit := (welcomeAccounts+im.MaxPortraitAccounts-1)/im.MaxPortraitAccounts + failed
	t.Logf("%d portrait_get requests (%d failed) for %d jobs over %d accounts", ok+failed, failed, welcomeJobs, welcomeAccounts)
	if ok+failed > limit {
		t.Errorf("%d portrait_get requests, want at most %d", ok+failed, limit)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	for i := range welcomeJobs {
		id := actions.JobID("cb-0-"+strconv.Itoa(i), 0, 0, 0)
		a := i % welcomeAccounts
		want := "Hi " + welcomeAccount(a) + ", thanks for adding me!"
		if a%2 == 0 {
			want = "Hi Nick " + strconv.Itoa(a) + ", thanks for adding me!"
		}
		if got := r.sink.texts[id]; got != want {
			t.Fatalf("job %d: %q, want %q", i, got, want)
		}
	}
}

// TestProfileTransientErrorRetriesJob: while portrait_get keeps failing
// (HTTP 502), the job waits for its profile, then fails transiently and is
// retried with its policy, and once IM answers it greets by the nick.
func TestProfileTransientErrorRetriesJob(t *testing.T) {
	r := newWelcomeRig(t, true, im.ProfilesConfig{Window: time.Millisecond})
	var fails []imtest.Reply
	for range 8 {
		fails = append(fails, imtest.Reply{HTTPStatus: 502})
	}
	r.srv.ScriptFor("/v4/"+im.PortraitGetPath, fails...)
	r.run(t, 1)
	if r.retried.Load() == 0 {
		t.Error("the job was never retried")
	}
	ok, failed := r.portraitRequests()
	if ok != 1 || failed != 8 {
		t.Errorf("%d requests ok, %d failed; want 1 and 8", ok, failed)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	if got := r.sink.texts[actions.JobID("cb-0-0", 0, 0, 0)]; got != "Hi Nick 0, thanks for adding me!" {
		t.Errorf("text %q", got)
	}
}

// BenchmarkWelcomeWarm is BenchmarkWelcome's nop jobs with every profile
// cached: what profile() costs a job once its profile has been read.
func BenchmarkWelcomeWarm(b *testing.B) {
	for _, profile := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "profile"}[profile], func(b *testing.B) {
			r := newWelcomeRig(b, profile, im.ProfilesConfig{})
			r.run(b, welcomeAccounts) // warms the cache
			var cpu time.Duration
			for b.Loop() {
				cpu0 := benchcpu.Time(b)
				r.run(b, welcomeJobs)
				cpu += benchcpu.Time(b) - cpu0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*welcomeJobs), "cpu-µs/job")
		})
	}
}

// BenchmarkWelcome runs 10 000 welcome jobs over 1 000 accounts per
// iteration, with and without profile(), each iteration on a queue and a
// profile cache of its own, and reports the process's CPU time per job
// (storing, running and the fake IM's side of portrait_get included;
// opening the queue not) and the portrait_get requests per 10 000 jobs.
//
// With send, the jobs are the real im.send to the fake IM, whose side of
// each request (decoding, checking, recording) counts too: the whole
// welcome job as it runs, against which profile() adds less.
func BenchmarkWelcome(b *testing.B) {
	for _, c := range []struct {
		profile, send bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		profile := c.profile
		name := map[bool]string{false: "plain", true: "profile"}[profile]
		if c.send {
			name = "send-" + name
		}
		b.Run(name, func(b *testing.B) {
			var cpu time.Duration
			requests := 0
			for b.Loop() {
				b.StopTimer()
				r := newWelcomeRigSend(b, profile, im.ProfilesConfig{}, c.send)
				b.StartTimer()
				cpu0 := benchcpu.Time(b)
				r.run(b, welcomeJobs)
				cpu += benchcpu.Time(b) - cpu0
				ok, failed := r.portraitRequests()
				requests += ok + failed
				b.StopTimer()
				_ = r.q.Stop(10 * time.Second)
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N*welcomeJobs), "cpu-µs/job")
			b.ReportMetric(float64(requests)/float64(b.N), "portrait_get/10k-jobs")
		})
	}
}
