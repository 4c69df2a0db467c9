package rules

import (
	"reflect"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

// TestEnvIsTable holds the generated environment and field readers to the
// field table: one key per row, of the row's type, and a reader of that
// kind for every row. TestFillEnvMatchesEnv and TestEventFieldsMatchEnv
// then hold fillEnv and the readers' values to envOf.
func TestEnvIsTable(t *testing.T) {
	env := EnvPrototype()
	if len(env) != len(imevent.Fields) {
		t.Errorf("the environment has %d keys, the table %d rows; run go generate ./...", len(env), len(imevent.Fields))
	}
	kinds := map[string]fkind{"string": fkString, "int": fkInt}
	for _, f := range imevent.Fields {
		v, ok := env[f.Name]
		if !ok {
			t.Errorf("%s: not in the environment; run go generate ./...", f.Name)
			continue
		}
		if got := reflect.TypeOf(v).String(); got != f.Type {
			t.Errorf("%s: %s in the environment, %s in the table", f.Name, got, f.Type)
		}
		r, ok := eventFieldOf(f.Name)
		if !ok {
			t.Errorf("%s: eventFieldOf does not know it; run go generate ./...", f.Name)
			continue
		}
		if r.kind != kinds[f.Type] {
			t.Errorf("%s: reader of kind %d for a %s", f.Name, r.kind, f.Type)
		}
	}
}
