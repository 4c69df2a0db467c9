package imevent

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestAppendEventJSONIsMarshal: the hand-written encoder must give exactly
// encoding/json's bytes. Every field is set through reflection, so a field
// added to Event and forgotten here fails the test.
func TestAppendEventJSONIsMarshal(t *testing.T) {
	strs := []string{
		"", "id", "user_123", "a\"b", `back\slash`, "<script>&amp;", "tab\tnew\nline\r", "\x00\x01\x1f\x7f",
		"日本語", "emoji 🙂", "line\u2028sep\u2029", "bad\xffutf8", "\xc3", "caf\u00e9", " spaces ", "'single'",
	}
	ints := []int{0, 1, -1, 42, 1400000000, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(ev *Event) {
		v := reflect.ValueOf(ev).Elem()
		for i := range v.NumField() {
			f := v.Field(i)
			switch f.Kind() {
			case reflect.String:
				f.SetString(strs[rng.IntN(len(strs))])
			case reflect.Int:
				f.SetInt(int64(ints[rng.IntN(len(ints))]))
			default:
				t.Fatalf("Event.%s has kind %s: teach AppendEventJSON about it", v.Type().Field(i).Name, f.Kind())
			}
		}
	}
	var zero Event
	check := func(ev *Event) {
		t.Helper()
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEventJSON([]byte("prefix"), ev)
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("AppendEventJSON differs from json.Marshal\n got: %s\nwant: %s", got[len("prefix"):], want)
		}
	}
	check(&zero)
	for range 5000 {
		var ev Event
		fill(&ev)
		check(&ev)
	}
	// Every field distinct and non-zero at once: a field written under the
	// wrong key or in the wrong order cannot hide behind an equal value.
	var ev Event
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.String {
			v.Field(i).SetString(v.Type().Field(i).Name + "-value")
		} else {
			v.Field(i).SetInt(int64(1000 + i))
		}
	}
	check(&ev)
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "id", "<&>", "\u2028", "\xff", "\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, json.Marshal = %s", s, got, want)
		}
	})
}

func BenchmarkEventJSON(b *testing.B) {
	ev := Event{CallbackCommand: CmdFriendAdd, SdkAppid: 1400000000, ClientIP: "127.0.0.1",
		OptPlatform: "RESTAPI", EventTime: 1670000000000, From_Account: "id", To_Account: "id1",
		ClientCmd: "friend_add", Admin_Account: "admin", ForceFlag: 1, PairCount: 3}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendEventJSON(buf[:0], &ev)
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&ev)
		}
	})
}
