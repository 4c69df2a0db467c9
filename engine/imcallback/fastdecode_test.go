package imcallback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// sharedSamples are the team's reference bodies; absent outside the
// development machine, where examples/callbacks is the whole corpus.
const sharedSamples = "/work/shared/samples"

// corpus returns every sample body, each distinct content once.
func corpus(t testing.TB) [][]byte {
	t.Helper()
	var bodies [][]byte
	for _, name := range callbacks.Names() {
		bodies = append(bodies, callbacks.Must(name))
	}
	shared, err := filepath.Glob(filepath.Join(sharedSamples, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range shared {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	seen := map[string]bool{}
	var out [][]byte
	for _, b := range bodies {
		if !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		t.Fatal("no sample bodies")
	}
	return out
}

// checkFast is the differential check: decodeFast either gives up or fills
// exactly what json.Unmarshal fills, Decode answers every command exactly
// as oldDecode (json.Unmarshal alone) does, and the events it gives are what
// the field table says, read from the body by reflection (tableEvents). It
// reports whether the fast path took the body.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	var fast body
	ok := fast.decodeFast(data)
	var ref body
	refErr := unmarshalBody(data, &ref)
	if ok {
		if refErr != nil {
			t.Fatalf("fast path took %q, which json.Unmarshal refuses: %v", data, refErr)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("fast path and json.Unmarshal differ on %q:\n fast %#v\n  ref %#v", data, fast, ref)
		}
	}
	for _, cmd := range imevent.Commands {
		got, want := newCB(cmd), newCB(cmd)
		gotErr, wantErr := Decode(data, got), oldDecode(data, want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || reflect.TypeOf(gotErr) != reflect.TypeOf(wantErr) {
			t.Fatalf("%s on %q: Decode says %v, oldDecode %v", cmd, data, gotErr, wantErr)
		}
		var gde, wde *DecodeError
		if errors.As(gotErr, &gde) && errors.As(wantErr, &wde) && *gde != *wde {
			t.Fatalf("%s on %q: Decode says %+v, oldDecode %+v", cmd, data, *gde, *wde)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s on %q: Decode gives\n %+v\noldDecode\n %+v", cmd, data, got, want)
		}
		if gotErr == nil {
			if table := tableEvents(t, &ref, got); !reflect.DeepEqual(got.Events, table) {
				t.Fatalf("%s on %q: Decode gives\n %+v\nthe field table says\n %+v", cmd, data, got.Events, table)
			}
		}
	}
	return ok
}

// keyRE finds the keys of a sample; no sample has a colon inside a value.
var keyRE = regexp.MustCompile(`"(\w+)"\s*:\s*`)

// valueAlts replace values: every JSON type, the edges of the integer
// types, escapes, non-ASCII and invalid UTF-8, and lists of each element
// shape.
var valueAlts = func() []string {
	alts := []string{
		`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `01`, `-01`, `00`, `-`, `+1`, `1.0`, `1.5`, `1e3`, `1E3`, `-1e-3`, `1.`, `.5`,
		`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`,
		`99999999999999999999999`, `2147483648`, `4294967296`,
		`""`, `"x"`, `"é"`, `"日本語"`, `"\xff"`, `"a\xc3"`, `"\xed\xa0\x80"`, `"\xef\xbf\xbd"`, `"\xf4\x90\x80\x80"`, `"\xc0\xaf"`,
		`"a\"b"`, `"a\\b"`, `"\u0041"`, `"\n"`, `"\ud800"`, `"a` + "\x01" + `b"`, `"a` + "\t" + `b"`, `"a` + "\x7f" + `b"`, `"a`, `"`,
		`{}`, `[]`, `[{}]`, `[null]`, `[1]`, `[""]`, `[[]]`, `[{},{}]`, `[{}` + "\n" + `,{} ]`, `{"a":[1,{"b":null}]}`, `[{"a":1}]`,
		`[{"To_Account":"z"}]`, `[{"From_Account":"a","To_Account":"b"}]`, `[{"to_account":"z"}]`, `[{"To_Account":"z","To_Account":"y"}]`,
		`[{"To_Account":null}]`, `[{"To_Account":1}]`, `[{"To_Account":"z"},]`, `[{"To_Account":"z"}`, `[{"To_Account":"z",}]`,
		`[{"Remark":"r","TagName":"t","ResponseAction":"a","To_Account":"z"}]`,
		`[{"GroupName":"g","AddSource":"s","AddWording":"w","To_Account":"z","Remark":"r"}]`,
		`[{"Initiator_Account":"i","From_Account":"f","To_Account":"t"}]`,
		`["a"]`, `["a","b"]`, `["a",1]`, `["a",null]`, `["a",]`, `["a"`, `[" a" , "é"]`, `["a\"b"]`, `["\u0041"]`, `[["a"]]`,
	}
	for _, c := range imevent.Commands {
		alts = append(alts, `"`+c+`"`)
	}
	return alts
}()

// mutations derives from one valid body many that are near it: truncated,
// padded, with bytes edited, keys renamed or repeated, values replaced and
// unknown keys added.
func mutations(data []byte, r *rand.Rand) [][]byte {
	s := string(data)
	var out []string
	add := func(parts ...string) { out = append(out, strings.Join(parts, "")) }
	add(s)
	var indented bytes.Buffer
	if json.Indent(&indented, data, "\r\n", "\t") == nil {
		add(indented.String())
	}
	for i := range len(s) {
		add(s[:i])
	}
	for _, tail := range []string{" ", "\n\t\r ", "x", "{}", "]", "}", ",", "\x00", "null", " \f", "\v"} {
		add(s, tail)
	}
	for i := range len(s) + 1 {
		add(s[:i], string(" \t\n\r"[i%4]), s[i:])
		if i%7 == 0 {
			add(s[:i], string("\f\v\u00a0"[i%3]), s[i:])
		}
	}
	fold := strings.NewReplacer("k", "\u212a", "s", "\u017f", "K", "\u212a", "S", "\u017f")
	for _, m := range keyRE.FindAllStringSubmatchIndex(s, -1) {
		ks, ke, name := m[0], m[3]+1, s[m[2]:m[3]]
		vs := m[1]
		dec := json.NewDecoder(strings.NewReader(s[vs:]))
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			continue
		}
		ve := vs + int(dec.InputOffset())
		for _, k := range []string{
			strings.ToLower(name), strings.ToUpper(name), strings.ToUpper(name[:1]) + strings.ToLower(name[1:]),
			fold.Replace(name), fmt.Sprintf(`\u%04x`, name[0]) + name[1:], "X" + name, name + " ", "",
		} {
			add(s[:ks], `"`+k+`"`, s[ke:])
		}
		for _, v := range []string{s[vs:ve], `"dup"`, `7`, `null`, `[]`, `[{}]`} {
			add(s[:ks], `"`+name+`":`+v+`,`, s[ks:])
			add(s[:ks], strings.ToLower(`"`+name+`":`)+v+`,`, s[ks:])
			add(s[:ve], `,"`+name+`":`+v, s[ve:])
		}
		for _, v := range valueAlts {
			add(s[:vs], v, s[ve:])
		}
	}
	for i := range len(s) {
		if s[i] == '{' {
			for _, kv := range []string{`"Unknown":1,`, `"X":{"y":[1,{"z":null}]},`, `"Y":"\u00e9",`, `"pairlist":[],`, `"":"",`} {
				add(s[:i+1], kv, s[i+1:])
			}
		}
	}
	const interesting = "{}[]\",:\\ \t0123456789-+.eEnulltrueaAzZ_\x00\x1f\x7f\x80\xbf\xc3\xe2\xff"
	for range 400 {
		b := []byte(s)
		for range 1 + r.IntN(3) {
			c := interesting[r.IntN(len(interesting))]
			if r.IntN(4) == 0 {
				c = byte(r.IntN(256))
			}
			switch i := r.IntN(len(b) + 1); {
			case i == len(b) || r.IntN(3) == 0:
				b = append(b[:i], append([]byte{c}, b[i:]...)...)
			case r.IntN(2) == 0:
				b = append(b[:i], b[i+1:]...)
			default:
				b[i] = c
			}
		}
		add(string(b))
	}
	res := make([][]byte, len(out))
	for i, m := range out {
		res[i] = []byte(m)
	}
	return res
}

func TestDecodeFastMatchesUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 2026))
	seen := map[string]bool{}
	var took, gaveUp int
	for _, sample := range corpus(t) {
		for _, m := range mutations(sample, r) {
			if seen[string(m)] {
				continue
			}
			seen[string(m)] = true
			if checkFast(t, m) {
				took++
			} else {
				gaveUp++
			}
		}
	}
	t.Logf("%d distinct bodies: fast path took %d, gave up on %d", took+gaveUp, took, gaveUp)
	// Whitespace, renamed values and in-range numbers alone are over a
	// thousand bodies the fast path must take; fewer means it gives up too often.
	if took < 1000 {
		t.Errorf("fast path took only %d bodies", took)
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast(t, data)
	})
}

func TestDecodeFastTakesSamples(t *testing.T) {
	bodies := corpus(t)
	for _, b := range bodies {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, " ", "  "); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, pretty.Bytes())
	}
	bodies = append(bodies,
		[]byte(`{}`),
		[]byte(" \r\n\t{ } \r\n\t"),
		[]byte(`{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[]}`),
		[]byte(`{"CallbackCommand":"Sns.CallbackFriendDelete","PairList":[{}]}`),
		[]byte(`{"EventTime":-9223372036854775808,"ForceFlag":9223372036854775807,"ForceAddFlags":-0}`),
		[]byte(`{"CallbackCommand":"Sns.CallbackPrevFriendAdd","FriendItem":[{"To_Account":"用户_é","AddWording":"你好 👋 �"}]}`),
		[]byte(`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","To_Account":[]}`),
		[]byte(`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","To_Account":[""]}`),
		[]byte(`{"To_Account":[ "用户_é" , "b" ],"FollowList":[{"To_Account":"c"}]}`),
	)
	for _, b := range bodies {
		var fast body
		if !fast.decodeFast(b) {
			t.Errorf("fast path gave up on %s", b)
		}
		checkFast(t, b)
	}
}

func TestDecodeFastGivesUp(t *testing.T) {
	const pair = `"PairList":[{"From_Account":"a","To_Account":"b"}]`
	for _, s := range []string{
		``, ` `, `null`, `[]`, `"x"`, `{`, `{"CallbackCommand":"x"`, `{"CallbackCommand":"x",}`, `{,}`,
		`{` + pair + `}{}`, `{` + pair + `}x`, `{` + pair + `},`,
		`{"CallbackCommand":"a\"b",` + pair + `}`,
		`{"CallbackCommand":"\u0041",` + pair + `}`,
		`{"CallbackCommand":"a` + "\x01" + `",` + pair + `}`,
		`{"CallbackCommand":"a` + "\xff" + `",` + pair + `}`,
		`{"CallbackCommand":null,` + pair + `}`,
		`{"callbackcommand":"x",` + pair + `}`,
		`{"C\u0061llbackCommand":"x",` + pair + `}`,
		`{"Unknown":"x",` + pair + `}`,
		`{"CallbackCommand":"x","CallbackCommand":"y",` + pair + `}`,
		`{` + pair + `,` + pair + `}`,
		`{"PairList":[{"To_Account":"a","To_Account":"b"}]}`,
		`{"PairList":[{"to_account":"b"}]}`,
		`{"PairList":[{"To_Account":"b","Remark":"r"}]}`,
		`{"PairList":null}`, `{"PairList":{}}`, `{"PairList":[null]}`, `{"PairList":[[]]}`, `{"PairList":[{},]}`,
		`{"EventTime":1.5}`, `{"EventTime":1e3}`, `{"EventTime":01}`, `{"EventTime":-}`, `{"EventTime":+1}`,
		`{"EventTime":"1"}`, `{"EventTime":true}`, `{"EventTime":9223372036854775808}`,
		`{"ForceFlag":-9223372036854775809}`, `{"CallbackCommand":1}`,
		`{"To_Account":"a"}`, `{"To_Account":null}`, `{"To_Account":[null]}`, `{"To_Account":[1]}`, `{"To_Account":[{}]}`,
		`{"To_Account":[{"To_Account":"a"}]}`, `{"To_Account":["a",]}`, `{"To_Account":["a\"b"]}`, `{"to_account":["a"]}`,
		`{"To_Account":["a"],"To_Account":["b"]}`, `{"FollowList":["a"]}`, `{"FollowList":[{"To_Account":"a","From_Account":"b"}]}`,
	} {
		var b body
		if b.decodeFast([]byte(s)) {
			t.Errorf("fast path took %q: %#v", s, b)
		}
		checkFast(t, []byte(s))
	}
}

// oldDecode is Decode without decodeFast: json.Unmarshal, then the same
// events. It is checkFast's reference and the library side of
// BenchmarkGainDecode.
func oldDecode(data []byte, cb *Callback) error {
	b := new(body)
	if err := unmarshalBody(data, b); err != nil {
		return err
	}
	return b.events(cb, DefaultMaxPairs)
}
