// Package layers holds no code: its tests hold the whole module to the
// shape docs/architecture.md describes. Imports point down the floors
// (cmd > engine > rules > actions > internal; a package's floor is the
// first element of its path), no hand-written Go file is over 800 lines and
// no hand-written function over cyclomatic complexity 20, counted as
// gocyclo counts (https://github.com/fzipp/gocyclo). The how-tos of
// docs/architecture.md name only files and identifiers that exist.
package layers
