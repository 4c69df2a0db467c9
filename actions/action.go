// Package actions holds the action contract, the registry of action kinds
// and the log, webhook and deny kinds. Each kind declares its parameters
// once, as a parameter struct (see Declarer); its Spec's Params derive
// from the struct, and rule loading, lint errors, `friendflow test`
// output, the action reference and the JSON schema all come from them. A
// kind decides whether its own failure is worth a retry; the retry policy
// itself lives in the workers.
//
// A new kind is a parameter struct with its DeclareParams, a Spec whose
// Params are ParamsOf that struct, a Do that starts with Decode, and a
// line in actions/builtin's Kinds; then regenerate the reference (go test
// ./cmd/friendflow -run TestReadmeActionReference -update) and the schema
// (go generate ./...). The Registry example shows a small one.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Job is one action to run for one matched event. Params were rendered at
// match time, so a later reload never changes work already accepted.
type Job struct {
	ID      string          `json:"id"`     // stable across retries: dedup keys derive from it
	Rule    string          `json:"rule"`   // name of the rule that matched
	Action  string          `json:"action"` // the kind's name
	Params  map[string]any  `json:"params"` // rendered, JSON-compatible values
	Event   json.RawMessage `json:"event"`  // the event, JSON with Tencent's field names
	Attempt int             `json:"attempt"`
}

// Kind is one kind of action.
type Kind interface {
	// Spec declares the kind: name, documentation and parameters.
	Spec() Spec
	// Do runs the action. params is job.Params after Spec.Check: defaults
	// applied and values normalised to the declared types. A kind reads
	// them with one call to Decode, into its parameter struct, and fails
	// permanently when they do not decode. A nil error is success; see
	// Permanent and Transient for failures. Do must tolerate being called
	// twice for one job (at-least-once delivery).
	Do(ctx context.Context, job Job, params map[string]any) error
}

// Merger is a Kind whose jobs run better together: the queue gives jobs
// that are due together (one stored message holds them, and they are due
// in the same run) and share a MergeKey to DoMerged in one call, instead of
// running each alone through Do. im.friend_update merges one user's
// updates into one request, which Tencent asks for to avoid write
// conflicts.
type Merger interface {
	Kind
	// MergeKey is the key of a job's params as stored (rendered, not yet
	// checked); jobs with equal keys may be merged, "" is never merged.
	MergeKey(params map[string]any) string
	// DoMerged runs jobs, whose params passed Spec.Check, and returns one
	// error per job with Do's meaning. It must tolerate being called again
	// for any of them (at-least-once delivery).
	DoMerged(ctx context.Context, jobs []Job, params []map[string]any) []error
}

// Spec is a kind's single declaration.
type Spec struct {
	Name   string
	Doc    string
	Params []Param
	// Sync kinds are decided while the callback waits for its reply instead
	// of being queued (deny). Only a before-callback's reply decides
	// anything, so rules refuses a Sync kind on any other command.
	Sync bool
	// Validate checks relations between parameters (text xor custom, code
	// ranges, size limits). It runs after the type checks, at load time with
	// Deferred standing for values only known at render time (skip the
	// values HasDeferred reports), and again on the rendered values. Nil
	// means nothing beyond the types.
	Validate func(params map[string]any) error
	// Rendered, when set, checks a job's rendered parameters against the
	// limits of the kind's target (IM's message size) before its callback
	// is answered, so a job that can never succeed fails the callback
	// instead of being accepted and dead-lettered later. It sees the
	// parameters as rendered (before Check's normalisation) and runs for
	// every job on the callback's path: keep it a few comparisons, with
	// no allocation when the parameters pass.
	Rendered func(params map[string]any) error
	// CallsBack lists the commands IM calls back with for what this kind
	// does (im.friend_add: Sns.CallbackFriendAdd). A rule running it on one
	// of them can answer its own requests' callbacks: lint warns unless
	// the rule's when excludes the events an admin caused (Admin_Account).
	CallsBack []string
}

// ParamType is the declared type of a parameter. In a parameter struct
// the field's Go type decides it, the type each comment below normalises
// to (a string for String, any for Any, a struct implementing Declarer for
// an Object); a string field is a URL when its Param says so.
type ParamType int

const (
	String     ParamType = iota // a string
	Int                         // an integer, normalised to int64
	Bool                        // true or false
	Duration                    // "1m30s"; normalised to time.Duration
	StringMap                   // string to string (headers); normalised to map[string]string
	Map                         // string to any value (log fields); normalised to map[string]any
	Object                      // a nested object with declared Fields; normalised to map[string]any, decoded into its struct
	Any                         // any JSON value, passed through (a webhook body)
	StringList                  // a list of strings (accounts); normalised to []string
	// URL is a string holding a URL. A rule's ${ } values inserted into
	// it after its first literal text are escaped for where they land
	// (path or query), so a value cannot change the URL's shape.
	URL

	numParamTypes // the length of paramTypes
)

func (t ParamType) String() string {
	if t.declared() {
		return paramTypes[t].name
	}
	return fmt.Sprintf("ParamType(%d)", int(t))
}

// Param declares one parameter of a kind. A kind's Params come from
// ParamsOf, which binds each to a field of the kind's parameter struct;
// a hand-written list serves Check, but Decode refuses it.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Default  any      // applied when the parameter is absent; nil for none
	Enum     []string // for String: the allowed values, when non-empty
	Doc      string
	Secret   bool    // never logged, shown as "<redacted>" by /rules and explain
	Fields   []Param // for Object
	// MinItems and MaxItems bound a StringList's length (0: no bound);
	// Check enforces them at load, where the list is written out.
	MinItems, MaxItems int
	// Example is a value as a rule file would write it (YAML flow
	// syntax), shown in the action reference.
	Example string

	decl *declaration // the struct declaring it, set by ParamsOf
}

// Deferred stands, at load time, for a value that is only known once the
// rule's templates are rendered for an event. Check accepts it for any type
// and Validate functions must skip it (see HasDeferred); Decode, which
// runs on rendered values only, rejects it.
type Deferred struct{}

// ParamError is a problem with one parameter. Path names it with dots for
// nested objects ("custom.data"), so the loader can point at its position.
type ParamError struct {
	Path string
	Msg  string
}

func (e *ParamError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Failure is an action error with its retry class.
type Failure struct {
	Err        error
	Permanent  bool          // retrying cannot help: dead-letter at once
	RetryAfter time.Duration // for transient failures: wait at least this long
	// Remaining, when not nil, replaces the job's params for what follows
	// the attempt: the next attempt, or the dead letter (and its replay).
	// A kind that did part of a job (some recipients of a batch) names
	// the part left, so no attempt repeats work that took effect.
	Remaining map[string]any
	// Abandoned, when not nil, is the part of the job that cannot succeed
	// (the accounts IM refused for good) while Remaining is retried: the
	// params of a dead letter of its own, written when this attempt ends,
	// so the part is reported (and replayable) without waiting for the rest.
	Abandoned map[string]any
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &Failure{Err: err, Permanent: true}
}

// Transient marks err as worth retrying, no sooner than after (0: the
// policy's own backoff decides).
func Transient(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &Failure{Err: err, RetryAfter: after}
}

// WithRemaining returns err, classified as before, with the params the
// job should continue with (see Failure.Remaining). An err that is not a
// *Failure is transient, as Classify reads it.
func WithRemaining(err error, remaining map[string]any) error {
	if err == nil {
		return nil
	}
	var f *Failure
	if !errors.As(err, &f) {
		return &Failure{Err: err, Remaining: remaining}
	}
	g := *f
	g.Err, g.Remaining = err, remaining
	if err == error(f) {
		g.Err = f.Err
	}
	return &g
}

// WithAbandoned returns err, classified as before, with the params of the
// job's part that cannot succeed (see Failure.Abandoned).
func WithAbandoned(err error, abandoned map[string]any) error {
	if err == nil {
		return nil
	}
	var f *Failure
	if !errors.As(err, &f) {
		return &Failure{Err: err, Abandoned: abandoned}
	}
	g := *f
	g.Err, g.Abandoned = err, abandoned
	if err == error(f) {
		g.Err = f.Err
	}
	return &g
}

// Abandoned returns the params of the part of a failed job that cannot
// succeed, or nil.
func Abandoned(err error) map[string]any {
	var f *Failure
	if errors.As(err, &f) {
		return f.Abandoned
	}
	return nil
}

// Remaining returns the params a failed job continues with, or nil when
// the failure does not change them.
func Remaining(err error) map[string]any {
	var f *Failure
	if errors.As(err, &f) {
		return f.Remaining
	}
	return nil
}

// Classify tells the retry policy what err means. An error the kind did not
// classify is transient: the attempt limit still bounds it, and giving up on
// work that might have succeeded is the worse mistake.
func Classify(err error) (permanent bool, retryAfter time.Duration) {
	var f *Failure
	if errors.As(err, &f) {
		return f.Permanent, f.RetryAfter
	}
	return false, 0
}

// Registry holds the action kinds by name. The zero value is ready to use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Kind
}

// Register adds k. Names must be unique.
func (r *Registry) Register(k Kind) error {
	name := k.Spec().Name
	if name == "" {
		return errors.New("actions: kind with an empty name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = make(map[string]Kind)
	}
	if _, dup := r.kinds[name]; dup {
		return fmt.Errorf("actions: kind %q registered twice", name)
	}
	r.kinds[name] = k
	return nil
}

// Lookup returns the kind called name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns every registered kind, sorted by name.
func (r *Registry) Kinds() []Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec().Name < out[j].Spec().Name })
	return out
}

// Names returns the registered kinds' names, sorted.
func (r *Registry) Names() []string {
	ks := r.Kinds()
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Spec().Name
	}
	return out
}
