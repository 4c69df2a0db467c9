// Package rules loads operator-written YAML rule files, compiles their expr
// conditions and ${ } templates against the typed event environment, and
// matches events against the resulting immutable rule Set.
//
// Loading is all or nothing: every file is parsed, every expression
// compiled, every action's parameters validated and every tests: case run
// before Load returns a Set. Every problem is reported, each as
// file:line:col: message, in a *LoadError.
//
// A Set never changes after Load and is safe for concurrent use; reloading
// means loading a new Set and swapping a pointer.
package rules
