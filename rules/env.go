package rules

import "github.com/friendflow/friendflow/rules/imevent"

// envOf, fillEnv and eventFieldOf list every event field, so they are
// generated into fields_gen.go from the field table, imevent.Fields, by
// imevent's go:generate.

// EnvPrototype is the typed environment rule expressions compile against:
// every event field with a zero value of its type.
func EnvPrototype() map[string]any {
	return envOf(&imevent.Event{})
}
