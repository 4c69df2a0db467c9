package rules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/friendflow/friendflow/rules/imevent"
)

// Counters (docs/rules.md, "Counters: rules with memory"): a counter counts the
// events of its commands by a key, over a sliding window; count(NAME, KEY)
// reads it in when, once and templates. The rules package declares what
// a counter is, evaluates its key and reads it through a CounterStore:
// engine/state keeps the state in JetStream, shared by every replica;
// MemCounters keeps it in memory for rule tests, explain and backtest.

const (
	// countFn is the name rules call; countImpl is what countPatcher
	// rewrites it to, with the environment (which carries the event's
	// Counts) as its first argument. A name holding a space cannot be
	// written in an expression.
	countFn   = "count"
	countImpl = "ff count"
	countsKey = "ff counts"

	// MaxCounterWindow is the longest window of a counter: a year.
	MaxCounterWindow = 8760 * time.Hour
	// MinCounterWindow is the shortest: JetStream keeps keys for at least
	// 100 ms, and a window shorter than a second counts nothing useful.
	MinCounterWindow = time.Second
	// CounterSlots is how many steps a window slides in: an event counts
	// from the moment it is counted for between (CounterSlots-1)/CounterSlots
	// of the window and the whole window, never longer.
	CounterSlots = 60
)

// counterNameRE is what a counter's name may be: it names a key-value
// bucket in JetStream ([a-zA-Z0-9_-]), under the namespace.
var counterNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

// ErrState is wrapped by the error of a count() whose counter state could
// not be read or written: the rule fails for that event, and a Prev
// decision falls back to the engine's fail-open or fail-closed answer.
var ErrState = errors.New("counter state unavailable")

// Counter is a counter as declared: its name, the commands it counts and
// its window.
type Counter struct {
	Name   string        `json:"name"`
	On     []string      `json:"on"`
	Key    string        `json:"key"` // the key expression, as written
	Window time.Duration `json:"window"`
}

// Step is the granularity the window slides by.
func (c Counter) Step() time.Duration { return CounterStep(c.Window) }

// CounterStep is the step of a window: a CounterSlots-th of it.
func CounterStep(window time.Duration) time.Duration {
	return max(window/CounterSlots, time.Millisecond)
}

// CounterSlot is the number of the step t falls in, for a window.
func CounterSlot(t time.Time, window time.Duration) int64 {
	return t.UnixNano() / int64(CounterStep(window))
}

// CounterStore holds counter state. Add and Get must be safe for
// concurrent use; Add must lose no increment under concurrency.
type CounterStore interface {
	// Add counts one event with key in c at at and returns the count of
	// c's events with key inside the window ending at at, this one included.
	Add(ctx context.Context, c Counter, key string, at time.Time) (int, error)
	// Get returns that count without counting anything.
	Get(ctx context.Context, c Counter, key string, at time.Time) (int, error)
}

// counterSpec is one compiled counter.
type counterSpec struct {
	Counter
	file      string
	line, col int
	key       *vm.Program
	fast      func(*imevent.Event) string // the key on the fast path; nil: the VM
}

func (c *counterSpec) covers(cmd string) bool { return slices.Contains(c.On, cmd) }

// CountValue is one counter value an event's evaluation used: counted
// (this event was counted in it) or read by count().
type CountValue struct {
	Counter string `json:"counter"`
	Key     string `json:"key"`
	Count   int    `json:"count"`
	Counted bool   `json:"counted,omitempty"` // this event was counted
	Read    bool   `json:"read,omitempty"`    // a count() read it
	Error   string `json:"error,omitempty"`
	err     error
}

// Counts is one event's view of the counters: the values its counting
// returned and the ones count() read. It is for one goroutine, the one
// matching the event.
type Counts struct {
	ctx   context.Context
	store CounterStore
	at    time.Time
	set   *Set
	vals  []CountValue
}

// Values are the counter values the event counted or read, counted
// first, in the order of the counters' declaration, then in read order.
func (c *Counts) Values() []CountValue {
	if c == nil {
		return nil
	}
	return c.vals
}

// Err is the first error of counting the event, or nil.
func (c *Counts) Err() error {
	if c == nil {
		return nil
	}
	for _, v := range c.vals {
		if v.Counted && v.err != nil {
			return v.err
		}
	}
	return nil
}

// count is count(name, key) for one evaluation.
func (c *Counts) count(name, key string) (int, error) {
	for i := range c.vals {
		v := &c.vals[i]
		if v.Counter == name && v.Key == key {
			v.Read = true
			return v.Count, v.err
		}
	}
	cs := c.set.counter(name)
	if cs == nil { // checked at load; a program of another set cannot get here
		return 0, fmt.Errorf("count: unknown counter %q", name)
	}
	v := CountValue{Counter: name, Key: key, Read: true}
	if c.store == nil {
		v.err = fmt.Errorf("count(%q): %w: no counter store", name, ErrState)
	} else {
		n, err := c.store.Get(c.ctx, cs.Counter, key, c.at)
		v.Count = n
		if err != nil {
			v.err = fmt.Errorf("count(%q): %w: %w", name, ErrState, err)
		}
	}
	if v.err != nil {
		v.Error = v.err.Error()
	}
	c.vals = append(c.vals, v)
	return v.Count, v.err
}

// Counters are the set's declared counters, in declaration order.
func (s *Set) Counters() []Counter {
	out := make([]Counter, len(s.counters))
	for i, c := range s.counters {
		out[i] = c.Counter
	}
	return out
}

// HasCounters reports whether the set declares counters: an engine
// without counter state can tell at load that it needs some.
func (s *Set) HasCounters() bool { return len(s.counters) > 0 }

func (s *Set) counter(name string) *counterSpec {
	for _, c := range s.counters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Count counts ev in every counter whose on covers its command, at at,
// in store, and returns the event's Counts for MatchCounts. It returns
// nil when the set has no counter: Match then costs what it did before
// counters existed. A failure to count is kept in the Counts (Err): the
// count() calls of that counter and key fail, and so do their rules.
func (s *Set) Count(ctx context.Context, ev *imevent.Event, store CounterStore, at time.Time) *Counts {
	if len(s.counters) == 0 {
		return nil
	}
	c := &Counts{ctx: ctx, store: store, at: at, set: s}
	for _, cs := range s.counters {
		if !cs.covers(ev.CallbackCommand) {
			continue
		}
		v := CountValue{Counter: cs.Name, Counted: true}
		key, err := s.counterKey(cs, ev)
		switch {
		case err != nil:
			v.err = fmt.Errorf("counter %s: key: %w", cs.Name, err)
		case store == nil:
			v.Key, v.err = key, fmt.Errorf("counter %s: %w: no counter store", cs.Name, ErrState)
		default:
			v.Key = key
			v.Count, err = store.Add(ctx, cs.Counter, key, at)
			if err != nil {
				v.err = fmt.Errorf("counter %s: %w: %w", cs.Name, ErrState, err)
			}
		}
		if v.err != nil {
			v.Error = v.err.Error()
		}
		c.vals = append(c.vals, v)
	}
	return c
}

// counterKey evaluates a counter's key for ev.
func (s *Set) counterKey(cs *counterSpec, ev *imevent.Event) (string, error) {
	if cs.fast != nil {
		return cs.fast(ev), nil
	}
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	sc.budget.begin(nil, &s.lim)
	sc.budget.rule()
	out, err := sc.budget.run(&sc.vm, cs.key, sc.envOf(ev))
	if err != nil {
		return "", err
	}
	key, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("result is %T, not string", out)
	}
	return key, nil
}

// MatchCounts is MatchBudget for an event whose counters were counted
// into counts (Set.Count): count() reads them.
func (s *Set) MatchCounts(ev *imevent.Event, b *Budget, counts *Counts) ([]Match, []RuleError) {
	return s.match(ev, b, counts)
}

// countOptions are the expr options of count(): the typed declaration the
// checker sees first, its implementation with the environment, and the
// patch that routes one to the other.
func countOptions() []expr.Option {
	return []expr.Option{
		// Overrides expr's builtin count(array, predicate): rules
		// read counters as count(NAME, KEY).
		expr.Function(countFn, func(...any) (any, error) {
			return nil, errors.New("count: not patched") // countPatcher rewrites every call
		}, new(func(string, string) int)),
		expr.Function(countImpl, countCall, new(func(map[string]any, string, string) int)),
		expr.Patch(countPatcher{}),
	}
}

// countCall is count(NAME, KEY) at run time: args are the environment,
// the name and the key.
func countCall(args ...any) (any, error) {
	env, _ := args[0].(map[string]any)
	c, _ := env[countsKey].(*Counts)
	name, _ := args[1].(string)
	key, _ := args[2].(string)
	if c == nil {
		return nil, fmt.Errorf("count(%q): %w: the event was not counted", name, ErrState)
	}
	return c.count(name, key)
}

// countPatcher rewrites count(NAME, KEY) into countImpl($env, NAME, KEY).
type countPatcher struct{}

func (countPatcher) Visit(node *ast.Node) {
	c := callTo(*node, countFn)
	if c == nil || len(c.Arguments) != 2 {
		return // a wrong count of arguments stays a type error of count
	}
	env := &ast.IdentifierNode{Value: "$env"}
	env.SetLocation(c.Location())
	callee := &ast.IdentifierNode{Value: countImpl}
	callee.SetLocation(c.Callee.Location())
	call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{env, c.Arguments[0], c.Arguments[1]}}
	call.SetLocation(c.Location())
	*node = call
}

// countErr names count() in a type error as the rule wrote it, not as
// countPatcher rewrote it.
func countErr(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) && strings.Contains(fe.Message, countImpl) {
		fe.Message = strings.ReplaceAll(fe.Message, countImpl, countFn)
	}
	return err
}

type countNames struct{ calls []*ast.CallNode }

func (v *countNames) Visit(node *ast.Node) {
	if c := callTo(*node, countImpl); c != nil {
		v.calls = append(v.calls, c)
	}
}

// checkCountNames makes count() of anything but the quoted name of a
// declared counter a compile error, at the name's position.
func checkCountNames(tree *parser.Tree, known map[string]*counterSpec, used *bool) error {
	v := &countNames{}
	ast.Walk(&tree.Node, v)
	*used = len(v.calls) > 0
	for _, c := range v.calls {
		arg := c.Arguments[1]
		s, ok := arg.(*ast.StringNode)
		var msg string
		switch {
		case !ok:
			msg = `count: the counter's name must be written as a quoted name, such as count("requests_by_sender", From_Account)`
		case known == nil:
			msg = fmt.Sprintf("count(%q): a counter's key cannot use count()", s.Value)
		case known[s.Value] == nil:
			msg = fmt.Sprintf("count: unknown counter %q%s", s.Value, counterSuggestion(s.Value, known))
		default:
			continue
		}
		fe := &file.Error{Location: arg.Location(), Message: msg}
		return fe.Bind(tree.Source)
	}
	return nil
}

func counterSuggestion(name string, known map[string]*counterSpec) string {
	if len(known) == 0 {
		return " (no counter is declared: add it under counters:)"
	}
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return suggestion(name, names)
}

// MemCounters is a CounterStore in memory, for rule tests, explain and
// backtest: the same sliding window in CounterSlots steps as the engine's
// store, for one process. Safe for concurrent use.
type MemCounters struct {
	mu   sync.Mutex
	keys map[memKey][]memSlot
}

type memKey struct{ counter, key string }

type memSlot struct {
	slot int64
	n    int
}

// NewMemCounters returns an empty MemCounters.
func NewMemCounters() *MemCounters { return &MemCounters{keys: make(map[memKey][]memSlot)} }

// Add implements CounterStore.
func (m *MemCounters) Add(_ context.Context, c Counter, key string, at time.Time) (int, error) {
	return m.do(c, key, at, 1), nil
}

// Get implements CounterStore.
func (m *MemCounters) Get(_ context.Context, c Counter, key string, at time.Time) (int, error) {
	return m.do(c, key, at, 0), nil
}

func (m *MemCounters) do(c Counter, key string, at time.Time, add int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{c.Name, key}
	slots, n := SlideSlots(m.keys[k], CounterSlot(at, c.Window), add, func(s memSlot) (int64, int) { return s.slot, s.n },
		func(slot int64, n int) memSlot { return memSlot{slot, n} })
	if len(slots) == 0 {
		delete(m.keys, k)
	} else {
		m.keys[k] = slots
	}
	return n
}

// SlideSlots is the sliding window over slots (oldest first): it drops
// the slots that left the window ending in slot cur, adds add to cur's
// (appending it), and returns the slots kept and their sum. A slot newer
// than cur (another replica's clock ahead of this one) is kept and
// counted. get and mk read and make a slot of the caller's type.
func SlideSlots[S any](slots []S, cur int64, add int, get func(S) (int64, int), mk func(int64, int) S) ([]S, int) {
	keep := slots[:0]
	sum := 0
	for _, s := range slots {
		slot, n := get(s)
		if slot <= cur-CounterSlots {
			continue
		}
		if slot == cur {
			n += add
			add = 0
			s = mk(slot, n)
		}
		keep = append(keep, s)
		sum += n
	}
	if add != 0 {
		keep = append(keep, mk(cur, add))
		sum += add
	}
	return keep, sum
}

// PeekCounters is a CounterStore that never writes Base: what explain
// uses to show the counts an event would see. Its own counting is kept in
// memory, on top of what Base holds.
type PeekCounters struct {
	Base  CounterStore
	local *MemCounters
}

// NewPeekCounters returns a PeekCounters over base.
func NewPeekCounters(base CounterStore) *PeekCounters {
	return &PeekCounters{Base: base, local: NewMemCounters()}
}

// Add implements CounterStore: Base's count plus the events counted here.
func (p *PeekCounters) Add(ctx context.Context, c Counter, key string, at time.Time) (int, error) {
	n, err := p.Base.Get(ctx, c, key, at)
	if err != nil {
		return 0, err
	}
	l, _ := p.local.Add(ctx, c, key, at)
	return n + l, nil
}

// Get implements CounterStore.
func (p *PeekCounters) Get(ctx context.Context, c Counter, key string, at time.Time) (int, error) {
	n, err := p.Base.Get(ctx, c, key, at)
	if err != nil {
		return 0, err
	}
	l, _ := p.local.Get(ctx, c, key, at)
	return n + l, nil
}

// SeededCounters is a MemCounters whose keys start from Base's counts
// instead of zero, never writing Base: what backtest --counters live
// replays on. Base's count of a key, read when the replay first needs
// it, is placed at the time of the replay's first event, so it leaves
// the window one window after the replay starts, as the deployment's own
// counts would have; a key first needed a window or more after that
// starts from zero without a read. Safe for concurrent use.
type SeededCounters struct {
	Base CounterStore

	mu      sync.Mutex
	mem     *MemCounters
	start   time.Time
	started bool
	seeded  map[memKey]bool
	err     error
}

// NewSeededCounters returns a SeededCounters over base.
func NewSeededCounters(base CounterStore) *SeededCounters {
	return &SeededCounters{Base: base, mem: NewMemCounters(), seeded: map[memKey]bool{}}
}

// Add implements CounterStore.
func (s *SeededCounters) Add(ctx context.Context, c Counter, key string, at time.Time) (int, error) {
	if err := s.seed(ctx, c, key, at); err != nil {
		return 0, err
	}
	return s.mem.Add(ctx, c, key, at)
}

// Get implements CounterStore.
func (s *SeededCounters) Get(ctx context.Context, c Counter, key string, at time.Time) (int, error) {
	if err := s.seed(ctx, c, key, at); err != nil {
		return 0, err
	}
	return s.mem.Get(ctx, c, key, at)
}

// Err is the first error reading Base, or nil.
func (s *SeededCounters) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *SeededCounters) seed(ctx context.Context, c Counter, key string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.start, s.started = at, true
	}
	k := memKey{c.Name, key}
	if s.seeded[k] || !at.Before(s.start.Add(c.Window)) {
		return nil
	}
	n, err := s.Base.Get(ctx, c, key, s.start)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return err
	}
	s.seeded[k] = true
	if n > 0 {
		s.mem.do(c, key, s.start, n)
	}
	return nil
}
