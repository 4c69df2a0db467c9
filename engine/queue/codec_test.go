package queue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// viaJSON is what format 1 gave the worker for params: json.Marshal, then
// json.Unmarshal into the map.
func viaJSON(params map[string]any) (map[string]any, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = json.Unmarshal(b, &out)
	return out, err
}

// viaV2 encodes params in a format 2 message and decodes it.
func viaV2(params map[string]any) (map[string]any, error) {
	job := Job{Job: actions.Job{ID: "j", Params: params}}
	data, err := appendJob(appendHeader(nil, 1), &job, nil)
	if err != nil {
		return nil, err
	}
	jobs, err := decodeJobs(data)
	if err != nil {
		return nil, err
	}
	return jobs[0].Params, nil
}

// same reports whether a and b are identical values as json.Unmarshal
// builds them: same types, same nil-ness, floats bit for bit (so 0 and -0
// differ). Any other type is a difference.
func same(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case float64:
		bf, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(bf)
	case []any:
		bs, ok := b.([]any)
		if !ok || (a == nil) != (bs == nil) || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !same(a[i], bs[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || (a == nil) != (bm == nil) || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !same(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// checkParams fails unless params come out of format 2 exactly as out of
// JSON, or both encodings refuse them.
func checkParams(t *testing.T, name string, params map[string]any) {
	t.Helper()
	want, werr := viaJSON(params)
	got, gerr := viaV2(params)
	switch {
	case werr != nil && gerr != nil:
	case werr != nil:
		t.Errorf("%s: %#v: JSON fails (%v), format 2 gives %#v", name, params, werr, got)
	case gerr != nil:
		t.Errorf("%s: %#v: format 2 fails (%v), JSON gives %#v", name, params, gerr, want)
	case !same(want, got):
		t.Errorf("%s: %#v:\nformat 2 %#v\nJSON     %#v", name, params, got, want)
	}
}

type point struct {
	X, Y int
	Tag  string `json:"tag,omitempty"`
}

type textKey int

func (k textKey) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("k%d", int(k))), nil }

func TestParamsMatchJSON(t *testing.T) {
	deep := any("bottom")
	for range 3 * maxNativeDepth {
		deep = []any{map[string]any{"d": deep}}
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	n := 7
	str := "pointed"
	for name, v := range map[string]any{
		"nil":             nil,
		"true":            true,
		"false":           false,
		"empty string":    "",
		"string":          "id -> id1",
		"html and escape": "<a href=\"x\">&amp;</a>\n\t\\ \u2028\u2029 \x00 \x1f",
		"invalid utf8":    "a\xffb\xc3(c\xed\xa0\x80d\xf0\x9f\x98",
		"replacement":     "\ufffd already",
		"unicode":         "héllo wörld 你好 🎉",
		"zero":            0.0,
		"negative zero":   math.Copysign(0, -1),
		"one":             1.0,
		"fraction":        1.5,
		"third":           1.0 / 3,
		"big float":       1e300,
		"max float":       math.MaxFloat64,
		"tiny float":      math.SmallestNonzeroFloat64,
		"2^63":            math.Ldexp(1, 63),
		"-2^63":           -math.Ldexp(1, 63),
		"2^64":            math.Ldexp(1, 64),
		"integral big":    1e20,
		"NaN":             math.NaN(),
		"+Inf":            math.Inf(1),
		"-Inf":            math.Inf(-1),
		"int":             42,
		"negative int":    -42,
		"2^53+1":          1<<53 + 1,
		"max int64":       int64(math.MaxInt64),
		"min int64":       int64(math.MinInt64),
		"int8":            int8(-8),
		"int16":           int16(-16),
		"int32":           int32(-32),
		"uint":            uint(7),
		"uint8":           uint8(200),
		"uint16":          uint16(60000),
		"uint32":          uint32(math.MaxUint32),
		"max uint64":      uint64(math.MaxUint64),
		"2^63 uint64":     uint64(1) << 63,
		"float32":         float32(0.1),
		"float32 big":     float32(3.4e38),
		"float32 NaN":     float32(math.NaN()),
		"json.Number":     json.Number("12.50"),
		"bad json.Number": json.Number("12,5"),
		"huge json.Num":   json.Number("1e400"),
		"raw message":     json.RawMessage(`{"a": [1, 2.5, "x"]}`),
		"bytes":           []byte("hi there"),
		"nil bytes":       []byte(nil),
		"strings":         []string{"a", "", "b\xff"},
		"nil strings":     []string(nil),
		"empty strings":   []string{},
		"ints":            []int{1, 2, 3},
		"nil slice":       []any(nil),
		"empty slice":     []any{},
		"mixed slice":     []any{nil, true, "s", 1, 2.5, []any{}, map[string]any{}},
		"nil map":         map[string]any(nil),
		"empty map":       map[string]any{},
		"nested":          map[string]any{"a": map[string]any{"b": []any{1, "two", map[string]any{"c": nil}}}},
		"string map":      map[string]string{"x": "y"},
		"int map":         map[string]int{"x": 1},
		"int keys":        map[int]string{2: "two", 10: "ten"},
		"text keys":       map[textKey]int{1: 1},
		"struct":          point{X: 1, Y: -2},
		"struct pointer":  &point{X: 3, Tag: "t"},
		"nil pointer":     (*point)(nil),
		"int pointer":     &n,
		"string pointer":  &str,
		"time":            time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC),
		"duration":        90 * time.Second,
		"channel":         make(chan int),
		"func":            func() {},
		"complex":         complex(1, 2),
		"deep":            deep,
		"cycle":           cyclic,
		"invalid keys":    map[string]any{"a\xfe": 1, "a\xff": 2, "ok": "x"},
		"invalid key":     map[string]any{"k\xff": []any{1}},
	} {
		checkParams(t, name, map[string]any{"v": v})
		checkParams(t, name+" (in a list)", map[string]any{"l": []any{v, v}})
	}
	checkParams(t, "nil params", nil)
	checkParams(t, "empty params", map[string]any{})
	checkParams(t, "invalid top-level key", map[string]any{"a\xfe": 1, "a\xff": 2})
	checkParams(t, "log action", map[string]any{"message": "id -> id1", "level": "debug"})
}

// randValue is a random params value of the kinds rules render, with the
// odd numbers and strings thrown in.
func randValue(r *rand.Rand, depth int) any {
	k := r.IntN(16)
	if depth > 4 && k >= 12 {
		k = r.IntN(12)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2, 3:
		return randString(r)
	case 4:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
	case 5:
		return math.Float64frombits(r.Uint64()) // any bits: NaN, Inf, subnormals
	case 6:
		return r.IntN(2000) - 1000
	case 7:
		return int64(r.Uint64())
	case 8:
		return r.Uint64()
	case 9:
		return float32(r.NormFloat64())
	case 10:
		return float64(r.Int64N(1<<60)) * []float64{1, -1}[r.IntN(2)]
	case 11:
		s := make([]string, r.IntN(4))
		for i := range s {
			s[i] = randString(r)
		}
		return s
	case 12, 13:
		if r.IntN(8) == 0 {
			return []any(nil)
		}
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randValue(r, depth+1)
		}
		return a
	default:
		if r.IntN(8) == 0 {
			return map[string]any(nil)
		}
		m := make(map[string]any)
		for range r.IntN(5) {
			m[randString(r)] = randValue(r, depth+1)
		}
		return m
	}
}

func randString(r *rand.Rand) string {
	alphabet := []string{"a", "b", "Z", "0", " ", "-", ">", "\"", "\\", "\n", "\x00", "é", "你", "🎉", "\u2028", "\ufffd", "\xff", "\xc3", "\xed\xa0\x80"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func TestRandomParamsMatchJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		params := map[string]any{}
		for range r.IntN(6) {
			params[randString(r)] = randValue(r, 0)
		}
		checkParams(t, fmt.Sprint("random ", i), params)
		if t.Failed() {
			return
		}
	}
}

// FuzzParamsMatchJSON builds params from the fuzzer's bytes, with the same
// generator as TestRandomParamsMatchJSON.
func FuzzParamsMatchJSON(f *testing.F) {
	for _, seed := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(seed, seed+1)
	}
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		r := rand.New(rand.NewPCG(s1, s2))
		params := map[string]any{}
		for range r.IntN(6) {
			params[randString(r)] = randValue(r, 0)
		}
		checkParams(t, "fuzz", params)
	})
}

const testEvent = `{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob","EventTime":1700000000000}`

// fullJob has every field set.
func fullJob(id string) Job {
	return Job{
		Job: actions.Job{
			ID: id, Rule: "welcome", Action: "im.send",
			Params:  map[string]any{"to": "bob", "n": 3, "list": []any{"x", 1.5}},
			Event:   json.RawMessage(testEvent),
			Attempt: 4,
		},
		Due:          time.Unix(1800000000, 123456789),
		Retry:        Retry{Attempts: 5, Backoff: 250 * time.Millisecond, MaxBackoff: time.Minute},
		OnceKey:      "alice|bob",
		FirstAttempt: time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC), // before 1970
		LastAttempt:  time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC),    // past UnixNano's range
		LastError:    "im: 500 \xff",
		CallbackID:   "cb-1",
	}
}

// checkJob fails unless got is want as format 1 (JSON) would have carried
// it: same fields, times equal, event bytes equal.
// checkGroup decodes body, the encodings of the callbacks ids[c] with the
// jobs cbs[c] concatenated, behind the header of a group, and requires every
// job back in order, as given but for its callback's ID and attempt 0.
func checkGroup(t *testing.T, body []byte, ids []string, cbs [][]Job) {
	t.Helper()
	total := 0
	for _, jobs := range cbs {
		total += len(jobs)
	}
	got, err := decodeJobs(append(appendHeader(nil, total), body...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("%d jobs, want %d", len(got), total)
	}
	k := 0
	for c, jobs := range cbs {
		for _, want := range jobs {
			want.CallbackID, want.Attempt = ids[c], 0
			checkJob(t, got[k], want)
			k++
		}
	}
}

func checkJob(t *testing.T, got, want Job) {
	t.Helper()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var ref Job
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(want.Event) == 0 {
		ref.Event = nil // format 1 turned a missing event into null
	}
	if !bytes.Equal(got.Event, ref.Event) {
		t.Errorf("%s: event %q, want %q", want.ID, got.Event, ref.Event)
	}
	if !same(got.Params, ref.Params) {
		t.Errorf("%s: params %#v, want %#v", want.ID, got.Params, ref.Params)
	}
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"due", got.Due, ref.Due}, {"first attempt", got.FirstAttempt, ref.FirstAttempt}, {"last attempt", got.LastAttempt, ref.LastAttempt}} {
		if !tm.got.Equal(tm.want) || tm.got.IsZero() != tm.want.IsZero() {
			t.Errorf("%s: %s %v, want %v", want.ID, tm.name, tm.got, tm.want)
		}
	}
	got.Event, ref.Event, got.Params, ref.Params = nil, nil, nil, nil
	got.Due, ref.Due, got.FirstAttempt, ref.FirstAttempt, got.LastAttempt, ref.LastAttempt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", ref) {
		t.Errorf("%s:\n got %#v\nwant %#v", want.ID, got, ref)
	}
}

func TestJobRoundTrip(t *testing.T) {
	bare := Job{Job: actions.Job{ID: "bare"}}
	epoch := fullJob("epoch")
	epoch.Due, epoch.FirstAttempt, epoch.LastAttempt = time.Unix(0, 0), time.Unix(-1, 999999999), time.Time{}
	local := fullJob("local")
	local.Due = time.Date(2026, 11, 26, 9, 30, 0, 5, time.FixedZone("UTC+8", 8*3600))
	for _, want := range []Job{fullJob("full"), bare, epoch, local} {
		data, err := appendJob(appendHeader(nil, 1), &want, nil)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := decodeJobs(data)
		if err != nil {
			t.Fatalf("%s: %v", want.ID, err)
		}
		if len(jobs) != 1 {
			t.Fatalf("%s: %d jobs", want.ID, len(jobs))
		}
		checkJob(t, jobs[0], want)
	}
}

// TestGroupIsConcatenation builds a group as Enqueue and the committer do:
// per-callback encodings, concatenated after one header.
func TestGroupIsConcatenation(t *testing.T) {
	other := json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendDelete"}`)
	var ids []string
	var cbs [][]Job
	for c := range 4 {
		id := fmt.Sprintf("cb-%d", c)
		var jobs []Job
		for i := range c + 1 {
			j := fullJob(fmt.Sprintf("%s-%d", id, i))
			j.Attempt = 9 // Enqueue starts every job at 0
			switch {
			case c == 2 && i == 1:
				j.Event = other
			case c == 3 && i == 2:
				j.Event = nil
			}
			jobs = append(jobs, j)
		}
		ids = append(ids, id)
		cbs = append(cbs, jobs)
	}
	var body []byte
	for c, id := range ids {
		b, err := appendCallback(nil, id, cbs[c])
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, b...)
	}
	checkGroup(t, body, ids, cbs)
	// An event is stored again only where it differs from the previous
	// job's in its callback: once in callbacks 0 and 1, twice in 2 and 3.
	if n := bytes.Count(body, []byte(testEvent)); n != 6 {
		t.Errorf("the event is stored %d times, want 6", n)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	jobs := []Job{fullJob("a"), fullJob("b"), fullJob("c")}
	body, err := appendCallback(nil, "cb", jobs)
	if err != nil {
		t.Fatal(err)
	}
	data := append(appendHeader(nil, len(jobs)), body...)
	if _, err := decodeJobs(data); err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		if _, err := decodeJobs(data[:n]); err == nil {
			t.Fatalf("%d of %d bytes decoded", n, len(data))
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty job message"},
		{"unknown format", append([]byte{0x07}, data[1:]...), "unknown job message format (first byte 0x07)"},
		{"truncated", data[:len(data)/2], "truncated"},
		{"trailing bytes", append(bytes.Clone(data), 0), "1 bytes after the last job"},
		{"no jobs", appendHeader(nil, 0), "holds no jobs"},
		{"count beyond size", binary.AppendUvarint([]byte{formatV2}, 1<<40), "truncated"},
		{"first event refers back", append(appendHeader(nil, 1), bareRecord(eventSame)...), "previous job"},
		{"JSON version", []byte(`{"v":3,"jobs":[{"id":"x"}]}`), "version 3"},
		{"bad JSON", []byte(`{"v":1,"jobs":[`), "undecodable"},
	} {
		_, err := decodeJobs(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// bareRecord is a record with empty fields, no params, and the given event
// field.
func bareRecord(event uint64) []byte {
	b := []byte{0, 0, 0, 0, 0} // ID, Rule, Action, CallbackID, OnceKey
	b = append(b, 0, 0, 0, 0)  // Attempt, Retry
	b = append(b, 0, 0, 0)     // times
	b = append(b, 0, tagNil)   // LastError, Params
	return binary.AppendUvarint(b, event)
}

// FuzzDecode: any bytes decode or fail; they never panic or allocate
// beyond their size.
func FuzzDecode(f *testing.F) {
	body, _ := appendCallback(nil, "cb", []Job{fullJob("a"), fullJob("b")})
	f.Add(append(appendHeader(nil, 2), body...))
	f.Add([]byte(`{"v":1,"jobs":[{"id":"a","params":{"x":[1,"2"]}}]}`))
	f.Add(append(appendHeader(nil, 1), bareRecord(eventNone)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, err := decodeJobs(data)
		if err == nil && len(jobs) == 0 {
			t.Fatal("no jobs and no error")
		}
	})
}
