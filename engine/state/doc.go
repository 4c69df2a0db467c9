// Package state keeps rules' memory (counters and lists) in JetStream, under
// the namespace, so that every replica of a deployment shares it and a
// restart keeps it.
package state
