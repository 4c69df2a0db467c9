package rules

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/friendflow/friendflow/rules/imevent"
	"go.yaml.in/yaml/v3"
)

// trickyWhens are conditions at the edges of the fast path's subset, each
// with whether it must be on the fast path.
var trickyWhens = []struct {
	src  string
	fast bool
}{
	{`true`, true},
	{`false`, true},
	{`true && !false`, true},
	{`!(From_Account == "a")`, true},
	{`not (ForceFlag == 1 || PairCount > 2)`, true},
	{`!!(To_Account != "")`, true},
	{`From_Account not in ["a", "b", ""]`, true},
	{`!(To_Account in ["x"]) && ForceFlag != 0`, true},
	{`(From_Account == "a" || To_Account == "b") && (ClientCmd == "c" || !(ForceFlag >= 2))`, true},
	{`From_Account == "a" and To_Account == "b" or ClientCmd == "c"`, true},
	{`From_Account == "a" or To_Account == "b" and not (ClientCmd == "c")`, true},
	{`From_Account == ""`, true},
	{`"" == To_Account`, true},
	{`"a" == "a" && From_Account != "a"`, true},
	{`From_Account == To_Account`, true},
	{`From_Account != Initiator_Account`, true},
	{`From_Account == "ünïcödé" || To_Account == "日本"`, true},
	{`From_Account in ["日本", "a", "é"]`, true},
	{`From_Account in []`, true},
	{`From_Account not in []`, true},
	{`From_Account in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "alice"]`, true},
	{`ForceFlag in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]`, true},
	{`ForceFlag in [-1, 0]`, true},
	{`ForceFlag not in [1]`, true},
	{`ClientCmd in ["friend_add", "friend_add"]`, true},
	{`ForceFlag == 9223372036854775807`, true},
	{`EventTime < -9223372036854775807`, true},
	{`EventTime > 9223372036854775806`, true},
	{`PairIndex >= 0 && PairIndex < PairCount`, true},
	{`ForceFlag <= 1 || PairCount < 3 || EventTime >= 500 || SdkAppid > -1`, true},
	{`ForceFlag <= PairCount || PairCount < EventTime || EventTime >= SdkAppid || SdkAppid > ForceAddFlags`, true},
	{`1 < ForceFlag`, true},
	{`0 <= PairIndex < PairCount`, true},
	{`-PairIndex < 0`, true},
	{`- -ForceFlag == 1`, true},
	{`+ForceFlag == 1`, true},
	{`-EventTime == EventTime`, true},
	{`ForceFlag == 0x1 || PairCount > 1_000`, true},
	{`ForceFlag == PairCount`, true},
	{`ForceFlag <= PairCount && SdkAppid > ForceAddFlags`, true},
	{`(ForceFlag == 1) == (PairCount == 1)`, true},
	{`(ForceFlag == 1) != true`, true},
	{`From_Account matches "^a[0-9]+$"`, true},
	{`From_Account matches "^bot[0-9]+-1$"`, true},
	{`To_Account matches "^ops1-"`, true},
	{`From_Account matches "[[:alpha:]]+\\d"`, true},
	{`To_Account matches "(?i)^ALICE$"`, true},
	{`From_Account matches "é+|日本"`, true},
	{`From_Account matches ""`, true},
	{`From_Account matches "^$"`, true},
	{`From_Account matches "a$|^b"`, true},
	{`AddWording matches "(?i)casino|loan"`, true},
	{`From_Account not matches "^a"`, true},
	{`"alice" matches From_Account`, false},
	{`From_Account startsWith "al"`, true},
	{`To_Account endsWith "é"`, true},
	{`AddWording contains "loan"`, true},
	{`From_Account contains ""`, true},
	{`From_Account startsWith To_Account`, true},
	{`From_Account not startsWith "x" && To_Account not contains "b" && To_Account not endsWith "z"`, true},
	{`From_Account + "|" + To_Account == "alice|bob"`, true},
	{`From_Account + To_Account in ["ab", "alicebob"]`, true},

	{`env("X") == "a"`, false},
	{`ForceFlag == 1 || env("X") == "1"`, false},
	{`len(From_Account) > 2`, false},
	{`upper(From_Account) == "ALICE"`, false},
	{`ForceFlag == 1.0`, false},
	{`ForceFlag > 0.5`, false},
	{`ForceFlag in [1, 2.0]`, false},
	{`ForceFlag in [PairCount]`, false},
	{`From_Account == nil`, false},
	{`$env.From_Account == "alice"`, false},
	{`$env["From_Account"] == "alice"`, false},
	{`ForceFlag > 1 ? true : PairCount == 1`, false},
	{`From_Account matches To_Account`, false},
	{`let x = ForceFlag; x == 1`, false},
	{`ForceFlag + 1 == 2`, false},
	{`ForceFlag % 2 == 0`, false},
	{`From_Account < "b"`, false},
	{`ForceFlag in 1..3`, false},
	{`From_Account[0:1] == "a"`, false},
	{`(From_Account ?? "x") == "x"`, false},
	{`From_Account == "a" ? ForceFlag == 1 : false`, false},
}

// whenCompiler compiles conditions as Load does, for the VM and for the
// fast path.
func whenCompiler() func(src string) (*vm.Program, func(*imevent.Event) bool, error) {
	l := newLoader(nil, func(string) string { return "" }, (&Options{}).limits())
	return func(src string) (*vm.Program, func(*imevent.Event) bool, error) {
		prog, cond, _, err := l.compileWhen(src)
		return prog, cond, err
	}
}

// whensOf returns the when of every rule in the YAML files of dir.
func whensOf(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in %s: %v", dir, err)
	}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Rules []struct {
				When string `yaml:"when"`
			} `yaml:"rules"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range doc.Rules {
			if r.When != "" {
				out = append(out, r.When)
			}
		}
	}
	return out
}

// eventGen draws random events whose values are mostly ones the
// expressions care about: their literals, near misses of them, the
// boundaries of int, and strings an expression's regexes may match.
type eventGen struct {
	rng  *rand.Rand
	strs []string
	nums []int
}

func newEventGen(rng *rand.Rand, srcs ...string) *eventGen {
	g := &eventGen{
		rng: rng,
		strs: []string{"", "a", "b", "alice", "bob", "ALICE", "id", "id1", "id2", "id3", "bot12-1", "bot1-12",
			"ops1-", "ops3-x", "a1", "a12x", "ab", "alicebob", "friend_add", "friend_response", "root1",
			"Best CASINO odds", "loan", "é", "éé", "日本", "ünïcödé", "a|b", "alice|bob", "z", "xyz", "\x00", "\xff"},
		nums: []int{0, 1, -1, 2, 3, 10, 500, 501, 505, 1000, math.MaxInt, math.MinInt, math.MaxInt - 1, math.MinInt + 1},
	}
	for _, src := range srcs {
		tree, err := parser.Parse(src)
		if err != nil {
			continue
		}
		ast.Find(tree.Node, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.StringNode:
				s := n.Value
				g.strs = append(g.strs, s, s+"x", "x"+s, s[:len(s)/2], strings.ToUpper(s))
			case *ast.IntegerNode:
				v := n.Value
				g.nums = append(g.nums, v, v-1, v+1, -v)
			}
			return false
		})
	}
	return g
}

func (g *eventGen) str() string {
	if g.rng.IntN(8) > 0 {
		return g.strs[g.rng.IntN(len(g.strs))]
	}
	const alphabet = "abAB019-_|é日 "
	r := []rune(alphabet)
	var b strings.Builder
	for range g.rng.IntN(7) {
		b.WriteRune(r[g.rng.IntN(len(r))])
	}
	return b.String()
}

func (g *eventGen) num() int {
	if g.rng.IntN(8) > 0 {
		return g.nums[g.rng.IntN(len(g.nums))]
	}
	return int(g.rng.Int64()) >> g.rng.IntN(64)
}

// event fills every field of an Event.
func (g *eventGen) event() *imevent.Event {
	var ev imevent.Event
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(g.str())
		case reflect.Int:
			f.SetInt(int64(g.num()))
		}
	}
	return &ev
}

// checkWhen evaluates src on the fast path and in the VM for n random
// events and fails on the first difference. It reports whether src is on
// the fast path.
func checkWhen(t *testing.T, compile func(string) (*vm.Program, func(*imevent.Event) bool, error), rng *rand.Rand, src string, n int) bool {
	t.Helper()
	prog, cond, err := compile(src)
	if err != nil {
		t.Fatalf("%s: does not compile: %v", src, err)
	}
	if cond == nil {
		return false
	}
	g := newEventGen(rng, src)
	var m vm.VM
	for range n {
		ev := g.event()
		want, err := m.Run(prog, envOf(ev))
		if err != nil {
			t.Fatalf("%s: VM: %v", src, err)
		}
		if got := cond(ev); got != want {
			t.Fatalf("%s: fast %v, VM %v for %+v", src, got, want, ev)
		}
	}
	return true
}

// TestFastMatchesVM holds the fast path to the VM's answers for the
// conditions of the examples, of the load benchmark's rules and of the
// tricky table.
func TestFastMatchesVM(t *testing.T) {
	compile := whenCompiler()
	rng := rand.New(rand.NewPCG(7, 11))
	for _, src := range whensOf(t, exampleRules(t)) {
		if strings.Contains(src, "count(") {
			continue // reads counter state the event alone does not hold: the VM's
		}
		if !checkWhen(t, compile, rng, src, 2000) {
			t.Errorf("example %s: not on the fast path", src)
		}
	}
	for _, src := range whensOf(t, benchRules(t)) {
		if !checkWhen(t, compile, rng, src, 500) {
			t.Errorf("bench %s: not on the fast path", src)
		}
	}
	for _, c := range trickyWhens {
		if fast := checkWhen(t, compile, rng, c.src, 2000); fast != c.fast {
			t.Errorf("%s: fast path %v, want %v", c.src, fast, c.fast)
		}
	}
}

// TestEventFieldsMatchEnv holds eventFieldOf to Env: the same names, the
// same types, the same values.
func TestEventFieldsMatchEnv(t *testing.T) {
	ev := distinctEvent(t)
	v := reflect.ValueOf(&ev).Elem()
	env := envOf(&ev)
	if len(env) != v.NumField() {
		t.Fatalf("Env has %d keys for %d fields", len(env), v.NumField())
	}
	for name, want := range env {
		f, ok := eventFieldOf(name)
		if !ok {
			t.Errorf("%s: no reader", name)
			continue
		}
		var got any
		switch f.kind {
		case fkString:
			got = f.str(&ev)
		case fkInt:
			got = f.num(&ev)
		}
		if got != want {
			t.Errorf("%s: reader gives %#v, Env %#v", name, got, want)
		}
	}
	if _, ok := eventFieldOf("PairList"); ok {
		t.Error("a reader for a name Env does not have")
	}
}

// TestFastFallsBackToVM checks that a rule outside the subset keeps its
// VM program and still matches through it, with fast rules around it.
func TestFastFallsBackToVM(t *testing.T) {
	s := mustLoad(t, oneRule(`  - name: flagged
    when: env("FLAG") == "on" && From_Account == "alice"
    once: {key: 'From_Account < To_Account ? From_Account : To_Account'}
    actions:
      - log: {message: "${ upper(From_Account) } ${ To_Account }"}
  - name: fast
    when: From_Account == "alice"
    once: {key: From_Account + "|" + To_Account}
    actions:
      - log: {message: "${ From_Account } ${ PairIndex }"}
`), func(o *Options) {
		o.Getenv = func(name string) string { return map[string]string{"FLAG": "on"}[name] }
	})
	flagged, fast := s.rules[0], s.rules[1]
	if flagged.cond != nil || flagged.once.fast != nil || flagged.actions[0].params.vals[0].tmpl.parts[0].fast.kind != 0 {
		t.Fatal("flagged: a VM-only expression is on the fast path")
	}
	if fast.cond == nil || fast.once.fast == nil || fast.actions[0].params.vals[0].tmpl.parts[0].fast.kind == 0 {
		t.Fatal("fast: a fast-path expression is left to the VM")
	}
	ms := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "alice", To_Account: "bob", PairIndex: 2})
	if len(ms) != 2 {
		t.Fatalf("matches = %+v", ms)
	}
	if got := ms[0].Actions[0].Params["message"]; got != "ALICE bob" || ms[0].Once.Key != "alice" {
		t.Errorf("flagged: message %q, once %q", got, ms[0].Once.Key)
	}
	if got := ms[1].Actions[0].Params["message"]; got != "alice 2" || ms[1].Once.Key != "alice|bob" {
		t.Errorf("fast: message %q, once %q", got, ms[1].Once.Key)
	}
	if ms := mustMatch(t, s, &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "bob"}); len(ms) != 0 {
		t.Errorf("bob: matches = %+v", ms)
	}
}

// loadFastAndVM loads the rules of dir twice: fast as Load leaves them, vm
// with every expression left to expr's VM by stripFast. It fails tb if
// nothing was on the fast path.
func loadFastAndVM(tb testing.TB, dir string) (fast, vm *Set) {
	tb.Helper()
	fast, err := Load(dir, Options{Registry: testRegistry(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	if vm, err = Load(dir, Options{Registry: testRegistry(tb)}); err != nil {
		tb.Fatal(err)
	}
	if n := stripFast(vm); n == 0 {
		tb.Fatal("nothing was on the fast path")
	}
	return fast, vm
}

// stripFast leaves every expression of s to the VM, as before the fast
// path, and returns how many were on it.
func stripFast(s *Set) int {
	n := 0
	var strip func(p *pval)
	strip = func(p *pval) {
		if p.kind == pvTemplate {
			for i := range p.tmpl.parts {
				if p.tmpl.parts[i].fast.kind != 0 {
					n++
				}
				p.tmpl.parts[i].fast = fexpr{}
			}
		}
		for _, v := range p.vals {
			strip(v)
		}
	}
	for _, r := range s.rules {
		if r.cond != nil {
			n++
		}
		r.cond = nil
		if r.once != nil {
			if r.once.fast != nil {
				n++
			}
			r.once.fast = nil
		}
		for _, a := range r.actions {
			strip(a.params)
		}
	}
	return n
}

// fastTemplateRules exercise the fast templates and once keys next to VM
// ones, all values an int or string field can take.
const fastTemplateRules = `rules:
  - name: templates
    when: ForceFlag != 7
    once: {key: 'From_Account + "|" + To_Account'}
    actions:
      - test.send:
          to: ${ From_Account }
          count: ${ PairIndex }
          body:
            str: ${ To_Account }
            num: ${ EventTime }
            neg: ${ -SdkAppid }
            bool: ${ ForceFlag == 1 }
            join: ${ From_Account + "|" + To_Account }
            text: "from ${ From_Account } at ${ EventTime }, ${ ForceFlag > 0 } #${PairIndex}/${ PairCount }$${ x }"
            adjacent: ${ From_Account }${ To_Account }${ ForceAddFlags }
            list: ["${ ClientCmd }", "${ -PairCount }", 3]
            vm: "${ upper(From_Account) } ${ ForceFlag + 1 } ${ From_Account < To_Account ? 1 : 2 }"
  - name: vm-once
    when: From_Account != To_Account
    once: {key: 'From_Account < To_Account ? From_Account : To_Account'}
    actions:
      - log: {message: "${ From_Account }"}
  - name: vm-when
    when: len(From_Account) > 1
    actions:
      - log: {message: "${ To_Account }: ${ PairCount }"}
`

// TestFastSetMatchesVMSet loads rule sets twice, leaves every expression of
// the second to the VM, and requires identical matches (rules, once keys,
// rendered actions) for random events: the whole of Match, fast templates,
// once keys and the lazily built environment included.
func TestFastSetMatchesVMSet(t *testing.T) {
	dirs := map[string]string{
		"bench":     benchRules(t),
		"templates": writeFiles(t, map[string]string{"r.yaml": fastTemplateRules}),
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			fast, slow := loadFastAndVM(t, dir)
			g := newEventGen(rand.New(rand.NewPCG(3, 5)), whensOf(t, dir)...)
			cmds := []string{imevent.CmdFriendAdd, imevent.CmdFriendAdd, imevent.CmdFriendDelete, imevent.CmdBlackListAdd}
			matched := 0
			for i := range 3000 {
				ev := g.event()
				ev.CallbackCommand = cmds[i%len(cmds)]
				if i%3 == 0 { // the sample's shape, so that rules match
					ev.From_Account, ev.ClientCmd = "id", "friend_add"
					ev.To_Account = []string{"id1", "id2", "id3", "user1"}[i%4]
				}
				got, _ := fast.Match(ev)
				want, _ := slow.Match(ev)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("event %+v:\n fast %+v\n VM   %+v", ev, got, want)
				}
				matched += len(got)
			}
			if matched < 100 {
				t.Fatalf("only %d matches: the events miss the rules", matched)
			}
		})
	}
}

// FuzzFastMatchesVM compares the fast path with the VM on any condition
// both accept, over an event built from the fuzzed values.
func FuzzFastMatchesVM(f *testing.F) {
	for i, c := range trickyWhens {
		f.Add(c.src, "alice", "bob", "friend_add", int64(i%3), int64(1-i))
	}
	f.Add(`From_Account matches "^a.*b$" || To_Account in ["x", "y"]`, "ab", "x", "", int64(math.MaxInt64), int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, src, a, b, c string, n, m int64) {
		prog, cond, err := whenCompiler()(src)
		if err != nil || cond == nil {
			return
		}
		ev := &imevent.Event{
			CallbackCommand: c, From_Account: a, To_Account: b, ClientCmd: c, AddWording: a + b,
			Initiator_Account: a, ForceFlag: int(n), PairCount: int(m), PairIndex: int(n - m), EventTime: int(n * m),
		}
		want, err := expr.Run(prog, envOf(ev))
		if err != nil {
			t.Fatalf("%s: VM: %v", src, err)
		}
		if got := cond(ev); got != want {
			t.Fatalf("%s: fast %v, VM %v for %+v", src, got, want, ev)
		}
	})
}
