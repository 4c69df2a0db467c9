package rules

import (
	"fmt"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Defaults of the schema; an action's retry defaults are
// actions.DefaultRetry, which the queue applies too.
const (
	defaultCommand     = imevent.CmdFriendAdd
	defaultOnceFor     = 24 * time.Hour
	redacted           = actions.Redacted
	emptyFileMsg       = "file is empty; refusing to treat it as no rules (write `rules: []` for a file without rules)"
	emptyRulesMsg      = "rules is empty; refusing to treat it as no rules (write `rules: []` for a file without rules)"
	maxSuggestDistance = 2
)

// Retry is an action's retry policy, the one the queue stores with a job.
type Retry = actions.Retry

// rule is one compiled rule. It never changes after Load, except for the
// explain programs, which are compiled once on first use.
type rule struct {
	idx         int // position in the Set: file order
	name        string
	description string
	file        string
	line, col   int
	on          []string
	whenSrc     string      // as written; "" when the rule has no when
	when        *vm.Program // nil: always true
	enabled     bool
	shadow      bool
	once        *onceSpec
	actions     []*action
	tests       []*testCase
	ok          bool      // compiled without problems
	warnings    []Problem // lint warnings the rule does not ignore

	// cond is when compiled to the fast path; nil when when is nil or
	// must run in the VM. Match uses it; Explain and rule tests, which
	// also trace when's operands in the VM, keep to the VM.
	cond    func(*imevent.Event) bool
	whenKey *indexKey // the index's conjunct of when; nil: none
	// usesLists: when looks a list up, so cond may run only while the
	// Set's Lists are ready (Set.listsReady).
	usesLists bool

	explainOnce sync.Once
	explain     *explainProgs
}

type onceSpec struct {
	src  string
	key  *vm.Program
	fast func(*imevent.Event) string // key on the fast path; nil: the VM
	dur  time.Duration
}

// action is one compiled action of a rule.
type action struct {
	kind   string
	spec   actions.Spec
	params *pval // a pvMap
	delay  time.Duration
	retry  Retry
	// cancelOn are the commands whose later events for the event's pair
	// drop the action while it waits for its delay.
	cancelOn []string
	cancel   *Cancel // cancelOn, as every Match hands it out
	// profile: a template of the parameters calls profile(); custom are
	// the custom profile fields they name.
	profile bool
	custom  []string
}

func (r *rule) covers(cmd string) bool {
	for _, c := range r.on {
		if c == cmd {
			return true
		}
	}
	return false
}

// evalWhen runs the rule's condition.
func (r *rule) evalWhen(b *evalBudget, m *vm.VM, env map[string]any) (bool, error) {
	if r.when == nil {
		return true, nil
	}
	out, err := b.run(m, r.when, env)
	if err != nil {
		return false, fmt.Errorf("when: %w", err)
	}
	v, ok := out.(bool)
	if !ok { // AsBool at compile time makes this unreachable; stay safe
		return false, fmt.Errorf("when: result is %T, not bool", out)
	}
	return v, nil
}

// evalOnce renders the dedup key; nil when the rule has no once.
func (r *rule) evalOnce(x *evalCtx) (*Once, error) {
	if r.once == nil {
		return nil, nil
	}
	if r.once.fast != nil {
		return &Once{Key: r.once.fast(x.ev), For: r.once.dur}, nil
	}
	out, err := x.run(r.once.key)
	if err != nil {
		return nil, fmt.Errorf("once.key: %w", err)
	}
	key, ok := out.(string)
	if !ok {
		return nil, fmt.Errorf("once.key: result is %T, not string", out)
	}
	return &Once{Key: key, For: r.once.dur}, nil
}

// renderActions renders every action's parameters for one event.
func (r *rule) renderActions(x *evalCtx) ([]Action, error) {
	if len(r.actions) == 0 {
		return nil, nil
	}
	out := make([]Action, len(r.actions))
	for i, a := range r.actions {
		x.accounts = x.accounts[:0]
		params, err := a.params.renderMap(x)
		if err != nil {
			return nil, fmt.Errorf("action %d (%s): %w", i+1, a.kind, err)
		}
		if a.profile && x.profiles == nil {
			params[actions.ProfilesParam] = profilesParam(x.accounts, a.custom)
		}
		out[i] = Action{Kind: a.kind, Params: params, Delay: a.delay, Retry: a.retry, Sync: a.spec.Sync, Cancel: a.cancel}
	}
	return out, nil
}
