// Package builtin lists friendflow's built-in action kinds, once: serve,
// the offline commands (lint, test, explain), the action reference, the
// JSON schema and the tests that need the real kinds all register them
// from here. Adding a kind is adding it to Kinds.
package builtin

import (
	"log/slog"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
)

// Deps are what the built-in kinds take from the composition root. The
// zero value serves where no action runs (lint, test, explain, the
// reference).
type Deps struct {
	// Logger is the log kind's; nil: slog.Default().
	Logger *slog.Logger
	// Accounts are the event fields the log kind shows as accounts
	// (imevent.AccountFields, which this floor cannot import).
	Accounts []string
	// IM calls IM for the im.* kinds; nil: they validate, and their jobs
	// fail permanently.
	IM *im.Client
}

// Kinds returns every built-in kind, built from d.
func Kinds(d Deps) []actions.Kind {
	return []actions.Kind{
		&actions.Log{Logger: d.Logger, Accounts: d.Accounts},
		&actions.Webhook{},
		actions.Deny{},
		im.NewSend(d.IM),
		im.NewBatchSend(d.IM),
		im.NewAddToGroup(d.IM),
		im.NewFriendUpdate(d.IM),
		im.NewFriendAdd(d.IM),
		im.NewFriendDelete(d.IM),
		im.NewBlacklistAdd(d.IM),
	}
}

// Registry returns a registry of Kinds(d).
func Registry(d Deps) *actions.Registry {
	var reg actions.Registry
	for _, k := range Kinds(d) {
		if err := reg.Register(k); err != nil {
			panic(err) // two built-in kinds with one name: a programming error
		}
	}
	return &reg
}
