// Package imevent is the Tencent Cloud IM vocabulary rules are written
// against: the callback commands friendflow turns into events (the command
// table, CommandTable), the Event one element of a callback becomes and its
// fields (the field table, Fields), and the event's JSON encoding.
//
// Both tables are the only declaration of what they hold. internal/genfields
// derives from them the command constants, Commands, IsPrev, Lists, the
// dense CommandIndex, the Event struct and AppendEventJSON here; the wire
// body and its decoding in engine/imcallback; the expression environment in
// rules; and the reference tables of docs/rules.md. Adding a command is one
// row of CommandTable plus the From entries of the fields it carries; see
// docs/architecture.md.
//
// The package imports nothing else of friendflow: rules build on it, the
// engine decodes callbacks into its Event, and actions never see it.
package imevent

//go:generate go run ./internal/genfields -pkg imevent -o imevent_gen.go
//go:generate go run ./internal/genfields -pkg imcallback -o ../../engine/imcallback/body_gen.go
//go:generate go run ./internal/genfields -pkg rules -o ../fields_gen.go
//go:generate go run ./internal/genfields -pkg docs -o ../../docs/rules.md
