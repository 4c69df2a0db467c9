package imevent

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzAppendEventJSON holds the whole event encoder, not only its string
// quoting (FuzzAppendJSONString), to json.Marshal: every field of the
// event takes one of the fuzzed strings or integers, chosen by sel, so
// field order, keys and integer formatting are fuzzed together with the
// values.
func FuzzAppendEventJSON(f *testing.F) {
	f.Add("id", "id1", "", int64(1400000000), int64(1), uint64(0))
	f.Add("<&>", "\u2028\xff", "a\"b\\c", int64(-1), int64(-9223372036854775808), uint64(0x5555555555555555))
	f.Add("日本語", "\x00\x1f\x7f", "Sns.CallbackFriendAdd", int64(9223372036854775807), int64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, s0, s1, s2 string, n0, n1 int64, sel uint64) {
		strs := [...]string{s0, s1, s2, ""}
		nums := [...]int64{n0, n1, 0, -n0}
		var ev Event
		v := reflect.ValueOf(&ev).Elem()
		for i := range v.NumField() {
			k := (sel >> (2 * (i % 32))) & 3
			switch f := v.Field(i); f.Kind() {
			case reflect.String:
				f.SetString(strs[k])
			case reflect.Int:
				f.SetInt(nums[k])
			default:
				t.Fatalf("Event.%s has kind %s: teach AppendEventJSON about it", v.Type().Field(i).Name, f.Kind())
			}
		}
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEventJSON([]byte("prefix"), &ev)
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("AppendEventJSON differs from json.Marshal for %+v\n got: %s\nwant: %s", ev, got[len("prefix"):], want)
		}
	})
}
