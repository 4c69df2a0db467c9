package queue

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// mergeUnits groups the due jobs of one message that an actions.Merger
// runs together: same kind, same MergeKey. It returns nil, allocating
// nothing beyond the kind lookups, when no two jobs merge, so messages of
// other kinds run exactly as before.
func (q *Queue) mergeUnits(due []Job) [][]int {
	if len(due) < 2 {
		return nil
	}
	var keys []string // per job; "" alone
	for i := range due {
		kind, ok := q.cfg.Registry.Lookup(due[i].Action)
		if !ok {
			continue
		}
		m, ok := kind.(actions.Merger)
		if !ok {
			continue
		}
		k := m.MergeKey(due[i].Params)
		if k == "" {
			continue
		}
		if keys == nil {
			keys = make([]string, len(due))
		}
		keys[i] = due[i].Action + "\x00" + k
	}
	if keys == nil {
		return nil
	}
	units := make([][]int, 0, len(due))
	at := make(map[string]int) // key → its unit
	for i, k := range keys {
		if u, ok := at[k]; ok && k != "" {
			units[u] = append(units[u], i)
			continue
		}
		if k != "" {
			at[k] = len(units)
		}
		units = append(units, []int{i})
	}
	if len(units) == len(due) {
		return nil
	}
	return units
}

// runMerged runs one unit of b: each job's attempt is counted and settled
// as runJob does, and the Merger's DoMerged runs those whose params check
// in one call, under the first job's context.
func (q *Queue) runMerged(b *batch, unit []int) {
	kind, _ := q.cfg.Registry.Lookup(b.due[unit[0]].Action)
	m := kind.(actions.Merger) // mergeUnits grouped only Mergers
	var (
		jobs   []actions.Job
		params []map[string]any
		idx    []int
		starts []time.Time
	)
	for _, i := range unit {
		r, job := &b.runs[i], &b.due[i]
		r.started = true
		r.before.save(job)
		t0 := q.begin(job)
		if reason, err := q.resolveProfiles(q.jobCtx, job); err != nil {
			r.res = q.settle(job, reason, err, t0)
			continue
		}
		p, err := kind.Spec().Check(job.Params)
		if err != nil {
			r.res = q.settle(job, "invalid parameters", fmt.Errorf("invalid parameters: %w", err), t0)
			continue
		}
		jobs, params = append(jobs, job.Job), append(params, p)
		idx, starts = append(idx, i), append(starts, t0)
	}
	if len(idx) == 0 {
		return
	}
	ctx := &b.runs[idx[0]].ctx
	ctx.init(q.jobCtx, starts[0].Add(q.cfg.JobTimeout))
	reason, errs := q.doMerged(m, ctx, jobs, params)
	for k, i := range idx {
		b.runs[i].res = q.settle(&b.due[i], reason, errs[k], starts[k])
	}
}

// doMerged calls m.DoMerged under ctx, turning a panic (or a wrong number
// of results) into a reason for every job, like do.
func (q *Queue) doMerged(m actions.Merger, ctx *jobContext, jobs []actions.Job, params []map[string]any) (reason string, errs []error) {
	defer ctx.cancel(context.Canceled)
	all := func(err error) []error {
		errs := make([]error, len(jobs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("action panicked", "job_id", jobs[0].ID, "action", jobs[0].Action, "jobs", len(jobs), "panic", p, "stack", string(debug.Stack()))
			reason, errs = "action panicked", all(fmt.Errorf("action panicked: %v", p))
		}
	}()
	errs = m.DoMerged(ctx, jobs, params)
	if len(errs) != len(jobs) {
		return "action failed", all(fmt.Errorf("action %s returned %d results for %d jobs", jobs[0].Action, len(errs), len(jobs)))
	}
	return "", errs
}
