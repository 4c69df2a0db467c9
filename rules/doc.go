// Package rules loads operator-written YAML rule files, compiles their expr
// conditions and ${ } templates against the typed event environment, and
// matches events against the resulting immutable rule Set.
//
// Loading is all or nothing: every file is parsed, every expression
// compiled, every action's parameters validated and every tests: case run
// before Load returns a Set. Every problem is reported, each as
// file:line:col: message, in a *LoadError. An empty file, a file whose
// rules: is empty and a directory without rule files are problems, never
// "no rules": only an explicit `rules: []` means that.
//
// Templates: any string in an action's parameters may hold ${ expr } parts.
// A string that is exactly one ${ } renders to the expression's value with
// its type (an int stays an int, a list stays a list); otherwise the parts
// are joined as text (nil as nothing, lists and maps as JSON). $${ writes a
// literal ${. env("NAME") reads the environment through Options.Getenv.
//
// A Set never changes after Load and is safe for concurrent use; reloading
// means loading a new Set and swapping a pointer. Match evaluates only the
// rules an event can match: rules are indexed by a top-level && conjunct
// `Field == constant` or `Field in [constants]` on an event field, so a
// large set of per-account rules costs little more than a small one.
//
// Conditions, once keys and template parts written in a small subset of
// expr (event fields, string/int/bool literals, == != < <= > >=, && || !,
// in and not in a list of literals, matches a literal pattern, contains,
// startsWith, endsWith, string +) are compiled to Go closures over the
// Event and give exactly what expr gives; everything else runs in expr's
// VM, whose map environment Match builds only when something needs it.
package rules
