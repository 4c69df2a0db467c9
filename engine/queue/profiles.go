package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// needsProfiles reports whether a job's parameters hold profile()
// templates, rendered when it runs.
func needsProfiles(job *Job) bool {
	_, ok := job.Params[actions.ProfilesParam]
	return ok
}

// maxProfileParks is how often a message is put back to wait for its
// profiles before its jobs run and wait for them in their workers.
const maxProfileParks = 3

// prefetchProfiles asks for the profiles of every due job of the message
// seq before any runs, so that they share portrait_get requests. When some
// are not cached yet, it returns how long the message should wait for
// them: put back, the message frees its worker for the next one, whose
// accounts then join the same requests (with the workers waiting instead,
// a batch held only the few accounts of the messages being run). A
// message waits at most maxProfileParks times.
// A held group is not put back (it would be moved to the shared queue):
// its wait is returned without counting.
func (q *Queue) prefetchProfiles(seq uint64, jobs []Job, now time.Time, held bool) time.Duration {
	if q.cfg.Profiles == nil {
		return 0
	}
	var (
		wait   time.Duration
		needed bool
	)
	for i := range jobs {
		if needsProfiles(&jobs[i]) && !jobs[i].Due.After(now) {
			needed = true
			wait = max(wait, q.cfg.Profiles.Prefetch(jobs[i].Params))
		}
	}
	if !needed || held {
		return wait
	}
	if wait <= 0 || !q.parks.park(seq) {
		q.parks.done(seq)
		return 0
	}
	return wait
}

// parks counts the times each message was put back for its profiles. A
// message taken by another replica after it was put back leaves its count
// here: the counts are forgotten, all at once, past maxParked.
type parks struct {
	mu sync.Mutex
	n  map[uint64]int
}

const maxParked = 1 << 14

// park counts one more wait of message seq, unless it has waited enough.
func (p *parks) park(seq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil || len(p.n) >= maxParked {
		p.n = make(map[uint64]int)
	}
	if p.n[seq] >= maxProfileParks {
		return false
	}
	p.n[seq]++
	return true
}

// parked reports whether message seq was put back: its next delivery is
// not a redelivery.
func (p *parks) parked(seq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[seq] > 0
}

// done forgets message seq, whose jobs run now.
func (p *parks) done(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.n, seq)
}

// resolveProfiles renders the job's profile() templates into its params,
// so that a retry of the action sends what the first attempt sent (the
// same text under the same MsgRandom, for Tencent's dedup) and a dead
// letter shows it. A transient failure to read profiles retries the job,
// with its usual policy.
func (q *Queue) resolveProfiles(ctx context.Context, job *Job) (reason string, err error) {
	if !needsProfiles(job) {
		return "", nil
	}
	if q.cfg.Profiles == nil {
		return "profiles unavailable", errors.New("the job's templates call profile(), and this queue reads no profiles")
	}
	params, err := q.cfg.Profiles.Resolve(ctx, job.Params, job.Event)
	if err != nil {
		return "", err
	}
	job.Params = params
	return "", nil
}
