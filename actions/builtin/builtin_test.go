package builtin_test

import (
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/builtin"
)

// Every built-in kind's Spec lists the parameters its struct declares:
// each parameter held by a field of its type, each field holding one
// (see actions.Declared), so Decode can fill the struct from any job the
// loader accepts.
func TestKindsDeclareTheirParams(t *testing.T) {
	reg := builtin.Registry(builtin.Deps{})
	if got, want := len(reg.Kinds()), len(builtin.Kinds(builtin.Deps{})); got != want || got == 0 {
		t.Fatalf("%d kinds registered of %d", got, want)
	}
	for _, k := range reg.Kinds() {
		s := k.Spec()
		if len(s.Params) == 0 {
			t.Errorf("%s declares no parameters", s.Name)
		}
		if err := actions.Declared(s); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}
