package rules

import "github.com/friendflow/friendflow/engine/imcallback"

// envOf, fillEnv and eventFieldOf list every event field, so they are
// generated into fields_gen.go from the field table, imcallback.Fields.

//go:generate go run ../engine/imcallback/internal/genfields -pkg rules -o fields_gen.go

// EnvPrototype is the typed environment rule expressions compile against:
// every event field with a zero value of its type.
func EnvPrototype() map[string]any {
	return envOf(&imcallback.Event{})
}
