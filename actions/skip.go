package actions

import "errors"

// Skip is what a Kind's Do returns for a job it decided not to run, which
// is neither a success nor a failure: the queue finishes the job without
// a retry or a dead letter, with the outcome "skipped" and why, so that
// the recorded event shows that the action did not happen and why (an
// im.friend_add for an event friendflow's own admin account caused).
func Skip(why string) error { return &skipError{why: why} }

type skipError struct{ why string }

func (e *skipError) Error() string { return "skipped: " + e.why }

// Skipped reports whether err is (or wraps) a Skip, and why.
func Skipped(err error) (why string, ok bool) {
	var s *skipError
	if errors.As(err, &s) {
		return s.why, true
	}
	return "", false
}
