// Package state keeps rules' memory (counters and lists) in JetStream, under
// the namespace, so that every replica of a deployment shares it and a
// restart keeps it.
//
// Counters (counters.go) implement rules.CounterStore: one key-value
// bucket per counter, whose TTL is the counter's window, holding per key
// the counts of the window's steps; an increment is a compare-and-set,
// retried on conflict, so no increment is lost when replicas count the
// same key at once. A replica remembers the value it wrote last to each
// key (a bounded number of them) and writes over it without reading
// first: one round trip while no other writer came in between.
package state
