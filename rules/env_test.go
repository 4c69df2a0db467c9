package rules

import (
	"fmt"
	"maps"
	"reflect"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

// TestFillEnvMatchesEnv sets every event field to a distinct value and
// checks that fillEnv, over a map holding another event, yields Env.
func TestFillEnvMatchesEnv(t *testing.T) {
	ev := distinctEvent(t)
	m := envOf(&imevent.Event{From_Account: "other"})
	fillEnv(&ev, m)
	if want := envOf(&ev); !maps.Equal(m, want) {
		t.Fatalf("fillEnv:\n got  %v\n want %v", m, want)
	}
}

// distinctEvent returns an event whose every field holds a value no other
// field has, so a reader that mixes up two fields is caught.
func distinctEvent(t *testing.T) imevent.Event {
	t.Helper()
	var ev imevent.Event
	v := reflect.ValueOf(&ev).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("value-%d", i))
		case reflect.Int:
			f.SetInt(int64(1000 + i))
		default:
			t.Fatalf("field %s has kind %s: teach fillEnv, eventFieldOf and their tests", v.Type().Field(i).Name, f.Kind())
		}
	}
	return ev
}
