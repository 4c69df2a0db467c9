package rules

import (
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Set is a compiled, immutable rule set, safe for concurrent use.
type Set struct {
	rules    []*rule // every rule, in file order
	byCmd    map[string]*cmdRules
	files    []FileInfo
	hash     string
	exprOpts []expr.Option // to compile explain programs lazily
	warnings []Problem     // lint warnings of the rules, in file order
	scratch  sync.Pool     // *scratch: a VM and buffers per concurrent Match
	lim      limits        // the evaluation budgets
	cancelOn []bool        // by imevent.CommandIndex: some action cancels on it; nil: none
	lists    Lists         // Options.Lists: what list() reads in Match
	decls    []ListDecl    // the lists the files declare

	counters []*counterSpec // declared counters (counters.go)

	byNameOnce sync.Once // builds byName on the first Outcomes
	byName     map[string]int
}

// Match is one rule that matched an event.
type Match struct {
	Rule   string
	Shadow bool
	// Once is the rule's dedup key for this event; nil when the rule has no
	// once. It is also set for shadow rules, so that what a shadow rule
	// would have deduplicated can be observed; the key is the rendered
	// expression, not yet scoped to the rule.
	Once *Once
	// Actions in the rule's order, with parameters rendered for the event.
	// Nil for shadow rules.
	Actions []Action
}

// RuleError is a rule's failure at run time for one event: its when,
// once.key or a template could not be evaluated. The rule counts as not
// matched; the other rules are not affected.
type RuleError struct {
	Rule string
	Err  error
}

func (e RuleError) Error() string { return "rule " + e.Rule + ": " + e.Err.Error() }

// Unwrap lets errors.Is and errors.As see the evaluation error, such as
// expr's *file.Error.
func (e RuleError) Unwrap() error { return e.Err }

// Once is a rendered dedup key: skip the actions if Key was seen within For.
type Once struct {
	Key string
	For time.Duration
}

// Action is one action to run, its parameters rendered for one event.
type Action struct {
	Kind string
	// Params are plain JSON-compatible values (string, int, float64, bool,
	// nil, map[string]any, []any), as written in the rule with templates
	// rendered; defaults and type normalisation are the kind's Spec.Check,
	// which the worker applies. The maps are fresh for every Match.
	Params map[string]any
	Delay  time.Duration
	Retry  Retry
	// Sync is the kind's Spec.Sync: decided while the callback waits
	// (deny), never queued.
	Sync bool
	// Cancel is the action's cancel_on; nil for most actions. Shared by
	// every Match: do not change it.
	Cancel *Cancel
}

// Cancel is an action's cancel_on: the commands whose later events for
// the same pair, in either direction, drop the action before it is due.
// A pointer in Action, so that actions without it stay as small as they
// were.
type Cancel struct {
	On []string
}

// scratch is what one Match needs besides the event: reused through a pool
// because expr's VM keeps its stack between runs.
type scratch struct {
	vm      vm.VM
	budget  evalBudget     // of the rule being evaluated
	env     map[string]any // the current event's environment
	listEnv listEnv        // what env carries under listsKey
	lists   [][]int32      // candidate lists of one event
	cand    []int32        // merged candidates
	bits    []uint64       // mergeBits's bitmap, all zero between uses
	// noEvent is the Resolver's stand-in event: its templates read the
	// fields they carry, in env.
	noEvent imevent.Event
	// x is the event being matched: here, on the heap with the scratch,
	// because render takes its address, and a context on matchWith's
	// stack would escape, one allocation per event.
	x evalCtx
}

// envOf returns ev's environment in the scratch's reused map.
func (sc *scratch) envOf(ev *imevent.Event) map[string]any {
	if sc.env == nil {
		sc.env = withLists(withBudget(envOf(ev), &sc.budget), &sc.listEnv)
	} else {
		fillEnv(ev, sc.env)
	}
	return sc.env
}

// evalCtx is one event being evaluated. Fast-path closures read the event
// itself; expr's VM needs the environment map, which costs more to fill
// than most conditions cost to evaluate, so it is filled on first use:
// often never, when every candidate rule is on the fast path and nothing
// matches.
type evalCtx struct {
	ev  *imevent.Event
	vm  *vm.VM
	sc  *scratch       // whose map env is filled into
	env map[string]any // nil until envMap
	// profiles is profile() where it is resolved at once (rule tests,
	// explain, the Resolver); nil at match time, where accounts records
	// the accounts a deferred template names.
	profiles func(account string) map[string]any
	accounts []string
	// counted: the set has counters, so the environment carries counts
	// (nil or not: never the last event's) for count().
	counted bool
	counts  *Counts
}

func (c *evalCtx) envMap() map[string]any {
	if c.env == nil {
		c.env = c.sc.envOf(c.ev)
		if c.counted {
			c.env[countsKey] = c.counts
		}
	}
	return c.env
}

// run runs p in the VM against the event, within the budget.
func (c *evalCtx) run(p *vm.Program) (any, error) {
	return c.sc.budget.run(c.vm, p, c.envMap())
}

func newSet(rules []*rule, files []FileInfo, hash string, opts []expr.Option, lim limits) *Set {
	s := &Set{
		rules:    rules,
		files:    files,
		hash:     hash,
		exprOpts: opts,
		lim:      lim,
	}
	s.scratch.New = func() any {
		sc := &scratch{budget: evalBudget{maxSteps: lim.evalSteps, maxBytes: lim.evalBytes}}
		sc.vm.MemoryBudget = lim.evalMemory
		return sc
	}
	s.byCmd = buildIndex(rules)
	s.cancelOn = cancelCommands(rules)
	return s
}

// Len is the number of rules in the set, disabled ones included.
func (s *Set) Len() int { return len(s.rules) }

// Match returns the enabled rules whose on covers ev's command and whose
// when is true, in file order, with their actions rendered, and the rules
// whose evaluation failed at run time, in file order. A failed rule does
// not match; the other rules are not affected. Both are nil when empty:
// an event without errors costs no allocation for them. The event has a
// callback's budget of its own; MatchBudget shares one between the
// events of a callback.
func (s *Set) Match(ev *imevent.Event) (matches []Match, errs []RuleError) {
	return s.MatchBudget(ev, nil)
}

// MatchBudget is Match drawing on b, the budget of ev's callback (nil: a
// budget of its own). Once b is spent, every rule that needs expr's VM
// fails for ev with ErrCallbackBudget.
func (s *Set) MatchBudget(ev *imevent.Event, b *Budget) (matches []Match, errs []RuleError) {
	return s.matchWith(nil, ev, b, s.lists, true, nil)
}

// match is MatchBudget with the event's counts (nil: none counted).
func (s *Set) match(ev *imevent.Event, b *Budget, counts *Counts) (matches []Match, errs []RuleError) {
	return s.matchWith(nil, ev, b, s.lists, true, counts)
}

// AppendMatches is MatchCounts (counts nil: none counted) appending ev's
// matches to dst, which it returns extended (dst itself when nothing
// matched): the events of one callback can share one array of matches,
// which the engine reuses for the next callback.
func (s *Set) AppendMatches(dst []Match, ev *imevent.Event, b *Budget, counts *Counts) ([]Match, []RuleError) {
	return s.matchWith(dst, ev, b, s.lists, true, counts)
}

// matchWith is MatchBudget appending to matches, with list() reading
// lists; own says they are the Set's own (Options.Lists), which the fast
// path reads. count() reads counts (nil: none counted).
func (s *Set) matchWith(matches []Match, ev *imevent.Event, b *Budget, lists Lists, own bool, counts *Counts) (_ []Match, errs []RuleError) {
	cr := s.byCmd[ev.CallbackCommand]
	if cr == nil {
		return matches, nil
	}
	sc := s.scratch.Get().(*scratch)
	defer s.putScratch(sc)
	sc.listEnv.src = lists
	sc.budget.begin(b, &s.lim)
	sc.x = evalCtx{ev: ev, vm: &sc.vm, sc: sc, counted: len(s.counters) > 0, counts: counts}
	x := &sc.x
	fastLists := -1 // whether list lookups may take the fast path: unknown until a rule asks

	for _, i := range cr.candidates(ev, sc) {
		r := s.rules[i]
		sc.budget.rule() // each rule has its whole share
		ok := true
		var err error
		switch {
		case r.cond != nil && (!r.usesLists || s.fastLists(&fastLists, own)):
			// Here rather than in a method returning a Match: most
			// candidates are fast and false, and such a call cost more
			// than their conditions.
			ok = r.cond(ev)
		case r.when != nil:
			ok, err = r.evalWhen(&sc.budget, x.vm, x.envMap())
		}
		var m Match
		if ok && err == nil {
			m, err = r.render(x)
		}
		if err != nil {
			errs = append(errs, RuleError{Rule: r.name, Err: err})
			continue
		}
		if ok {
			matches = append(matches, m)
		}
	}
	return matches, errs
}

// putScratch returns sc to the pool without what the event's context
// points to: a pooled scratch must not keep an event, its counts or the
// accounts of its templates alive.
func (s *Set) putScratch(sc *scratch) {
	sc.x = evalCtx{}
	s.scratch.Put(sc)
}

// render builds the Match of a rule whose when is true: the once key and
// the actions.
func (r *rule) render(x *evalCtx) (Match, error) {
	once, err := r.evalOnce(x)
	if err != nil {
		return Match{}, err
	}
	// Shadow rules render too, so that a template error shows in shadow
	// mode, before the rule goes live; the actions are then dropped.
	acts, err := r.renderActions(x)
	if err != nil {
		return Match{}, err
	}
	if r.shadow {
		acts = nil
	}
	return Match{Rule: r.name, Shadow: r.shadow, Once: once, Actions: acts}, nil
}

// fastLists says, once per event (*memo: -1 unknown, 0 no, 1 yes),
// whether rules that look a list up may take the fast path: with the
// Set's own Lists, and while those are ready.
func (s *Set) fastLists(memo *int, own bool) bool {
	if *memo < 0 {
		*memo = 0
		if own && s.listsReady() {
			*memo = 1
		}
	}
	return *memo == 1
}
