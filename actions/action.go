// Package actions holds the action contract, the registry of action kinds
// and the built-in kinds. Each kind declares its parameters once, in its
// Spec; rule loading, lint errors, `friendflow test` output and the README
// reference all come from that declaration. A kind decides whether its own
// failure is worth a retry; the retry policy itself lives in the workers.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// applied and values normalised to the declared types. A nil error is
	// success; see Permanent and Transient for failures. Do must tolerate
	// being called twice for one job (at-least-once delivery).
	Do(ctx context.Context, job Job, params map[string]any) error
}

// Spec is a kind's single declaration.
type Spec struct {
	Name   string
	Doc    string
	Params []Param
	// Commands, when non-empty, are the only callback commands the kind may
	// be used on (deny: the two Prev commands).
	Commands []string
	// Sync kinds are decided while the callback waits for its reply instead
	// of being queued (deny).
	Sync bool
	// Validate checks relations between parameters (text xor custom, code
	// ranges, size limits). It runs after the type checks, at load time with
	// Deferred standing for values only known at render time, and again on
	// the rendered values. Nil means nothing beyond the types.
	Validate func(params map[string]any) error
}

// ParamType is the declared type of a parameter.
type ParamType int

const (
	String    ParamType = iota // a string
	Int                        // an integer, normalised to int64
	Bool                       // true or false
	Duration                   // "1m30s"; normalised to time.Duration
	StringMap                  // string to string (headers); normalised to map[string]string
	Map                        // string to any value (log fields); normalised to map[string]any
	Object                     // a nested object with declared Fields; normalised to map[string]any
	Any                        // any JSON value, passed through (a webhook body)
)

func (t ParamType) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "integer"
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case StringMap:
		return "map of strings"
	case Map:
		return "map"
	case Object:
		return "object"
	case Any:
		return "any"
	}
	return fmt.Sprintf("ParamType(%d)", int(t))
}

// Param declares one parameter of a kind.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Default  any      // applied when the parameter is absent; nil for none
	Enum     []string // for String: the allowed values, when non-empty
	Doc      string
	Secret   bool    // never logged, shown as "<redacted>" by /rules and explain
	Fields   []Param // for Object
}

// Deferred stands, at load time, for a value that is only known once the
// rule's templates are rendered for an event. Check accepts it for any type
// and Validate functions must skip it.
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

// Check validates params against the declaration and returns a new map
// with defaults applied and values normalised to the declared types.
// Unknown parameters are errors. The input is not modified.
func (s Spec) Check(params map[string]any) (map[string]any, error) {
	out, err := checkFields(s.Params, params, "")
	if err != nil {
		return nil, err
	}
	if s.Validate != nil {
		if err := s.Validate(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkFields(decl []Param, in map[string]any, prefix string) (map[string]any, error) {
	// Declarations are a handful of parameters: a linear scan beats
	// building a set, and Check runs for every job.
	for k := range in {
		if !declared(decl, k) {
			return nil, unknownParam(decl, in, prefix)
		}
	}
	out := make(map[string]any, len(decl))
	for i := range decl {
		p := &decl[i]
		v, ok := in[p.Name]
		if !ok || v == nil {
			if p.Required {
				return nil, &ParamError{Path: prefix + p.Name, Msg: "required parameter is missing"}
			}
			if p.Default != nil {
				// Normalised like a given value, so Do sees one type
				// whether a value was given or defaulted (a Duration
				// declared with a "5s" default is a time.Duration too).
				nv, err := normalise(p, p.Default, prefix+p.Name)
				if err != nil {
					return nil, fmt.Errorf("invalid default: %w", err)
				}
				out[p.Name] = nv
			}
			continue
		}
		nv, err := normalise(p, v, prefix+p.Name)
		if err != nil {
			return nil, err
		}
		out[p.Name] = nv
	}
	return out, nil
}

func declared(decl []Param, name string) bool {
	for i := range decl {
		if decl[i].Name == name {
			return true
		}
	}
	return false
}

// unknownParam reports the first unknown key in sorted order, so that the
// error is the same whatever the map's iteration order.
func unknownParam(decl []Param, in map[string]any, prefix string) error {
	keys := make([]string, 0, len(in))
	for k := range in {
		if !declared(decl, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return &ParamError{Path: prefix + keys[0], Msg: "unknown parameter" + suggest(decl)}
}

func suggest(decl []Param) string {
	if len(decl) == 0 {
		return " (this action takes none)"
	}
	names := make([]string, len(decl))
	for i, p := range decl {
		names[i] = p.Name
	}
	return fmt.Sprintf(" (known: %v)", names)
}

func normalise(p *Param, v any, path string) (any, error) {
	if _, ok := v.(Deferred); ok {
		return v, nil
	}
	bad := func() error {
		return &ParamError{Path: path, Msg: fmt.Sprintf("want %s, got %s", p.Type, describe(v))}
	}
	switch p.Type {
	case String:
		s, ok := v.(string)
		if !ok {
			switch v.(type) {
			case int, int64, float64, bool:
				s = fmt.Sprint(v) // a YAML scalar the user meant as text
			default:
				return nil, bad()
			}
		}
		if len(p.Enum) > 0 {
			for _, e := range p.Enum {
				if s == e {
					return s, nil
				}
			}
			return nil, &ParamError{Path: path, Msg: fmt.Sprintf("%q is not one of %v", s, p.Enum)}
		}
		return s, nil
	case Int:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case uint64:
			if n > math.MaxInt64 {
				return nil, bad()
			}
			return int64(n), nil
		case float64:
			// The range check first: converting an out-of-range float
			// is implementation-defined (it saturates on arm64).
			if n < math.MinInt64 || n >= math.MaxInt64 || n != float64(int64(n)) {
				return nil, bad()
			}
			return int64(n), nil
		case json.Number:
			i, err := n.Int64()
			if err != nil {
				return nil, bad()
			}
			return i, nil
		}
		return nil, bad()
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, bad()
		}
		return b, nil
	case Duration:
		switch d := v.(type) {
		case time.Duration:
			if d < 0 {
				return nil, &ParamError{Path: path, Msg: fmt.Sprintf("negative duration %v", d)}
			}
			return d, nil
		case string:
			dd, err := time.ParseDuration(d)
			if err != nil || dd < 0 {
				return nil, &ParamError{Path: path, Msg: fmt.Sprintf("invalid duration %q (use e.g. 500ms, 5s, 1m)", d)}
			}
			return dd, nil
		}
		return nil, bad()
	case StringMap:
		m, ok := asMap(v)
		if !ok {
			return nil, bad()
		}
		out := make(map[string]string, len(m))
		for k, x := range m {
			switch s := x.(type) {
			case string:
				out[k] = s
			case int, int64, float64, bool:
				out[k] = fmt.Sprint(s)
			case Deferred:
				out[k] = ""
			default:
				return nil, &ParamError{Path: path + "." + k, Msg: fmt.Sprintf("want string, got %s", describe(x))}
			}
		}
		return out, nil
	case Map:
		m, ok := asMap(v)
		if !ok {
			return nil, bad()
		}
		return m, nil
	case Object:
		m, ok := asMap(v)
		if !ok {
			return nil, bad()
		}
		return checkFields(p.Fields, m, path+".")
	case Any:
		return v, nil
	}
	return nil, fmt.Errorf("%s: undeclared parameter type %v", path, p.Type)
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = x
		}
		return out, true
	}
	return nil, false
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int, int64, uint64, float64, json.Number:
		return "number"
	case bool:
		return "bool"
	case map[string]any, map[string]string:
		return "map"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// Failure is an action error with its retry class.
type Failure struct {
	Err        error
	Permanent  bool          // retrying cannot help: dead-letter at once
	RetryAfter time.Duration // for transient failures: wait at least this long
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
