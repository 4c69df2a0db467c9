package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// genRules writes n rules; indexed rules each test a distinct
// From_Account == "userN" conjunct, unindexed ones hide the same test
// behind an ||, so every rule is evaluated for every event.
func genRules(n int, indexed bool) string { return genRulesFrom(0, n, indexed) }

// genRuleFiles is genRules split into files of at most 1000 rules (about
// 200 KiB, 21 000 YAML nodes), as a large rule set must be under the
// per-file limits (DefaultMaxFileBytes, DefaultMaxNodes).
func genRuleFiles(n int, indexed bool) map[string]string {
	files := make(map[string]string)
	for from := 0; from < n; from += 1000 {
		files[fmt.Sprintf("r%05d.yaml", from)] = genRulesFrom(from, min(n, from+1000), indexed)
	}
	return files
}

func genRulesFrom(from, to int, indexed bool) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "  - name: rule-%d\n", i)
		if indexed {
			fmt.Fprintf(&b, "    when: 'From_Account == \"user%d\" && ClientCmd in [\"friend_add\", \"friend_response\"]'\n", i)
		} else {
			fmt.Fprintf(&b, "    when: 'ForceFlag == 1 || From_Account == \"user%d\" && ClientCmd in [\"friend_add\", \"friend_response\"]'\n", i)
		}
		b.WriteString("    once: {key: 'From_Account + \"|\" + To_Account'}\n")
		b.WriteString("    actions:\n      - log: {message: \"hello ${ From_Account } from ${ To_Account }\", level: info}\n")
	}
	return b.String()
}

func BenchmarkMatch(b *testing.B) {
	for _, indexed := range []bool{true, false} {
		for _, n := range []int{1, 100, 1000, 10000} {
			name := fmt.Sprintf("indexed/rules=%d", n)
			if !indexed {
				name = fmt.Sprintf("unindexed/rules=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				s := mustLoad(b, genRuleFiles(n, indexed))
				ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "user0", To_Account: "bob"}
				if got := mustMatch(b, s, ev); len(got) != 1 {
					b.Fatalf("matches = %d", len(got))
				}
				b.ReportAllocs()
				for b.Loop() {
					s.Match(ev)
				}
			})
		}
	}
}

// BenchmarkMatchNoMatch is the common case of an event no rule wants.
func BenchmarkMatchNoMatch(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("indexed/rules=%d", n), func(b *testing.B) {
			s := mustLoad(b, genRuleFiles(n, true))
			ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "nobody", To_Account: "bob"}
			b.ReportAllocs()
			for b.Loop() {
				s.Match(ev)
			}
		})
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	s := mustLoad(b, map[string]string{"r.yaml": genRules(100, false)})
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "friend_add", From_Account: "user0", To_Account: "bob"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Match(ev)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			dir := writeFiles(b, genRuleFiles(n, true))
			reg := testRegistry(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(dir, Options{Registry: reg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchRules writes bench/genrules.sh's rule set into a new temporary
// directory, the rule set the load benchmark matches against.
func benchRules(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	out, err := exec.Command("bash", filepath.Join("..", "bench", "genrules.sh"), dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("genrules.sh: %v\n%s", err, out)
	}
	return dir
}

// sampleQuery is the query of the sample callbacks: what the receiver
// reads from the callback URL, by event field name.
var sampleQuery = map[string]any{"SdkAppid": 1400000000, "ClientIP": "127.0.0.1", "OptPlatform": "RESTAPI"}

// sampleReceivedAt is the sample callbacks' receive time, in Unix
// milliseconds: the EventTime of events whose body has none.
const sampleReceivedAt = 1764115200000

// exampleRules returns a copy of the rule files the repository ships
// (examples/rules): a file an operator added there cannot fail the tests.
func exampleRules(tb testing.TB) string {
	tb.Helper()
	dir, err := examples.CopyRules(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// sampleEvents returns the events of examples/callbacks/friend_add.json as
// the receiver builds them: one per pair, sharing the callback's fields.
func sampleEvents(tb testing.TB) []*imevent.Event {
	tb.Helper()
	evs := decodeSample(tb, "friend_add.json")
	out := make([]*imevent.Event, len(evs))
	for i := range evs {
		out[i] = &evs[i]
	}
	return out
}

// decodeSample decodes the sample callback examples/callbacks/<name> into
// its events the way the receiver (engine/imcallback, a floor above rules)
// does, from the field table alone: one event per element of the command's
// list, each field read where its row says (sampleQuery, the body's top
// level or the element), PairIndex and PairCount derived, EventTime
// falling back to the receive time.
func decodeSample(tb testing.TB, name string) []imevent.Event {
	tb.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(callbacks.Must(name), &body); err != nil {
		tb.Fatal(err)
	}
	var cmd string
	if err := json.Unmarshal(body["CallbackCommand"], &cmd); err != nil || !imevent.IsCommand(cmd) {
		tb.Fatalf("%s: CallbackCommand %q: %v", name, cmd, err)
	}
	var elems []map[string]json.RawMessage
	if scalar := scalarOf(cmd); scalar != "" {
		// A list of plain values: each is the element's one field.
		var values []json.RawMessage
		if err := json.Unmarshal(body[imevent.Lists[cmd]], &values); err != nil {
			tb.Fatalf("%s: %s: %v", name, imevent.Lists[cmd], err)
		}
		for _, v := range values {
			elems = append(elems, map[string]json.RawMessage{scalar: v})
		}
	} else if err := json.Unmarshal(body[imevent.Lists[cmd]], &elems); err != nil {
		tb.Fatalf("%s: %s: %v", name, imevent.Lists[cmd], err)
	}
	evs := make([]imevent.Event, len(elems))
	for i, elem := range elems {
		ev := &evs[i]
		for _, f := range imevent.Fields {
			if err := sampleField(ev, f, cmd, body, elem); err != nil {
				tb.Fatalf("%s: %s: %v", name, f.Name, err)
			}
		}
		ev.PairIndex, ev.PairCount = i, len(elems)
		if ev.EventTime == 0 {
			ev.EventTime = sampleReceivedAt
		}
	}
	return evs
}

// scalarOf is the field each element of cmd's list is, when the list
// holds plain values (imevent.Command.Scalar), else "".
func scalarOf(cmd string) string {
	for _, c := range imevent.CommandTable {
		if c.Name == cmd {
			return c.Scalar
		}
	}
	return ""
}

// sampleField sets field f of ev, an event of cmd, as decodeSample says.
func sampleField(ev *imevent.Event, f imevent.Field, cmd string, body, elem map[string]json.RawMessage) error {
	dst := reflect.ValueOf(ev).Elem().FieldByName(f.Name)
	var raw json.RawMessage
	switch src := f.From[cmd]; src {
	case 0:
		return nil
	case imevent.FromQuery:
		if f.Name == "CallbackCommand" {
			dst.SetString(cmd)
		} else if v, ok := sampleQuery[f.Name]; ok {
			dst.Set(reflect.ValueOf(v))
		}
		return nil
	case imevent.FromBody:
		raw = body[f.Name]
	case imevent.FromElem:
		raw = elem[f.Name]
	case imevent.Derived:
		if f.Name != "PairIndex" && f.Name != "PairCount" {
			return errors.New("a derived field decodeSample does not know; derive it here as the decoder does")
		}
		return nil
	default:
		return fmt.Errorf("unknown source %v", src)
	}
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, dst.Addr().Interface())
}

// decodeSample reads every sample callback: each event has its command,
// the query's fields, a target (To_Account is never empty), its place in
// the list and a time; and it reads the fields of each list element and of
// the body.
func TestDecodeSampleEveryCallback(t *testing.T) {
	for _, name := range callbacks.Names() {
		evs := decodeSample(t, name)
		if len(evs) == 0 {
			t.Errorf("%s: no events", name)
		}
		for i, ev := range evs {
			if !imevent.IsCommand(ev.CallbackCommand) || ev.SdkAppid != 1400000000 || ev.ClientIP == "" ||
				ev.To_Account == "" || ev.From_Account == "" || ev.PairIndex != i || ev.PairCount != len(evs) || ev.EventTime == 0 {
				t.Errorf("%s: event %d: %+v", name, i, ev)
			}
		}
	}
	prev := decodeSample(t, "prev_friend_add.json")
	if ev := prev[1]; ev.AddWording != "this is id2!" || ev.AddType != "Add_Type_Both" || ev.EventTime != 1631777344870 {
		t.Errorf("prev_friend_add.json: event 1: %+v", ev)
	}
}

// BenchmarkMatchBenchRules matches the three events of one sample callback
// against the load benchmark's 100 rules: the matching share of a callback.
func BenchmarkMatchBenchRules(b *testing.B) {
	s, err := Load(benchRules(b), Options{Registry: testRegistry(b)})
	if err != nil {
		b.Fatal(err)
	}
	evs := sampleEvents(b)
	for i, ev := range evs {
		if got := mustMatch(b, s, ev); len(got) != 1 {
			b.Fatalf("event %d: %d matches, want 1", i, len(got))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, ev := range evs {
			s.Match(ev)
		}
	}
}
