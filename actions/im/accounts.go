package im

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// noAnswer stands for the code of an account whose request got no IM
// answer (network, timeout, HTTP error).
const noAnswer = -1

// accounts sorts the accounts of one job (recipients, members, friends) by
// what became of them, so that a failure stays with the account it belongs
// to: the others are done, retried or reported on their own.
type accounts struct {
	retry  []string       // failed transiently: the next attempt's list
	failed []string       // failed for good: reported, dead-lettered apart
	codes  map[string]int // the code each failed account got (noAnswer: none)
	why    map[string]string
	wait   time.Duration // the longest wait the retried accounts' codes ask for
}

func newAccounts() *accounts {
	return &accounts{codes: map[string]int{}, why: map[string]string{}}
}

// again marks a to be retried after its code's wait.
func (o *accounts) again(a string, code int, wait time.Duration) {
	o.retry = append(o.retry, a)
	o.codes[a] = code
	o.wait = max(o.wait, wait)
}

// fail marks a as failed for good.
func (o *accounts) fail(a string, code int, why string) {
	o.failed = append(o.failed, a)
	o.codes[a] = code
	if why != "" {
		o.why[a] = why
	}
}

// byCode sorts accounts by code: per the table, retried or failed.
func (o *accounts) byCode(a string, code int) {
	switch c, _ := Lookup(code); c.Class {
	case ClassTransient, ClassRateLimited:
		o.again(a, code, c.Wait)
	default:
		o.fail(a, code, "")
	}
}

// byError sorts the accounts of a request that failed as a whole with err
// (none of them took effect): retried when err is transient, failed with
// its code otherwise.
func (o *accounts) byError(list []string, err error) {
	code := noAnswer
	var e *Error
	if errors.As(err, &e) && e.HTTPStatus == 200 {
		code = e.Code
	}
	permanent, wait := actions.Classify(err)
	for _, a := range list {
		if permanent {
			o.fail(a, code, "")
		} else {
			o.again(a, code, wait)
		}
	}
}

// report logs each failed account, with its code.
func (o *accounts) report(ctx context.Context, log *slog.Logger, kind string, job actions.Job) {
	for _, a := range o.failed {
		attrs := []slog.Attr{slog.String("job_id", job.ID), slog.String("rule", job.Rule),
			slog.String("account", a), slog.Int("code", o.codes[a])}
		if w := o.why[a]; w != "" {
			attrs = append(attrs, slog.String("why", w))
		}
		log.LogAttrs(ctx, slog.LevelWarn, kind+": account failed for good", attrs...)
	}
}

// result is the job's outcome: nil when every account is done; a
// transient failure naming the accounts to retry (the job's remaining
// params, key set to them), with those failed for good as its abandoned
// part; or a permanent failure naming the failed ones. Each account is
// named with its code, in the error that the job's history, its dead
// letter and the recorded event show.
func (o *accounts) result(what string, job actions.Job, key string, total int) error {
	switch {
	case len(o.retry) > 0:
		err := actions.Transient(fmt.Errorf("%s: %d of %d failed, retrying them: %s%s",
			what, len(o.retry), total, o.list(o.retry), o.failedNote()), o.wait)
		err = actions.WithRemaining(err, withList(job.Params, key, o.retry))
		if len(o.failed) > 0 {
			err = actions.WithAbandoned(err, withList(job.Params, key, o.failed))
		}
		return err
	case len(o.failed) > 0:
		return actions.WithRemaining(actions.Permanent(fmt.Errorf("%s: %d of %d failed for good: %s",
			what, len(o.failed), total, o.list(o.failed))), withList(job.Params, key, o.failed))
	}
	return nil
}

func (o *accounts) failedNote() string {
	if len(o.failed) == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed for good (dead-lettered apart): %s", len(o.failed), o.list(o.failed))
}

// list names accounts with their codes, the first ten.
func (o *accounts) list(accts []string) string {
	var b strings.Builder
	for i, a := range accts {
		if i == 10 {
			fmt.Fprintf(&b, ", … (%d more)", len(accts)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		switch c := o.codes[a]; {
		case o.why[a] != "":
			fmt.Fprintf(&b, "%s (%s)", a, o.why[a])
		case c == noAnswer:
			fmt.Fprintf(&b, "%s (no answer)", a)
		default:
			fmt.Fprintf(&b, "%s (%d)", a, c)
		}
	}
	return b.String()
}
