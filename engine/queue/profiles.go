package queue

import (
	"context"
	"errors"

	"github.com/friendflow/friendflow/actions"
)

// needsProfiles reports whether a job's parameters hold profile()
// templates, rendered when it runs.
func needsProfiles(job *Job) bool {
	_, ok := job.Params[actions.ProfilesParam]
	return ok
}

// prefetchProfiles asks for the profiles of every due job of a message
// before any runs, so that they share portrait_get requests.
func (q *Queue) prefetchProfiles(due []Job) {
	if q.cfg.Profiles == nil {
		return
	}
	for i := range due {
		if needsProfiles(&due[i]) {
			q.cfg.Profiles.Prefetch(due[i].Params)
		}
	}
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
