// Package record keeps a replica's recent callbacks in a bounded ring in
// memory, for GET /events, the console and backtests: each decoded event,
// the rules that matched it and the rule-set generation that decided, the
// Prev decision, the jobs it created and, later, each job's outcome.
//
// The hot path records cheaply (about a copy of the event as JSON): the
// rules that did not match and the values of their conditions are derived
// when an event is read, by evaluating it again against the same rule set,
// which has no side effects. Rendered parameters are never stored; when
// they are derived, secret ones are redacted as explain redacts them.
package record
