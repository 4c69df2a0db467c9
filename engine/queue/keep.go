package queue

import (
	"github.com/nats-io/nats.go"
)

// The jobs stream's keeper: a message no consumer takes, so that the
// stream's newest block never empties.
//
// Why: JetStream's file store keeps a stream in block files and writes into
// the newest. A work-queue stream removes each message once acknowledged,
// and when that empties the newest block the store deletes the block and
// creates a new file for the next write (nats-server v2.15 filestore.go,
// removeMsgBlock → newMsgBlockForWrite). Under load the workers keep up, so
// that happened about every few messages: a CPU profile of bench/load.sh
// showed opening those files (openat) at 13 % of friendflow's CPU. With a
// keeper in the newest block, an acknowledgement only marks its message
// deleted. A block fills up (4 MiB for a work-queue stream) and the next
// one starts without a keeper, so a new one is published every keepEvery
// bytes of jobs; each replaces the previous (a subject roll-up,
// https://docs.nats.io/nats-concepts/jetstream/streams#allowrollup), so
// there is at most one, and an old block goes away once its jobs are done.
//
// The keeper carries nothing and is never needed: a lost or purged keeper
// only costs the file churn until the next one. Its subject is outside the
// jobs' wildcard, which is the consumer's filter.

// keepEvery is how many bytes of job messages are published between two
// keepers: a small part of a block, so that a new block goes without one
// for a short while only, and rare enough to cost nothing per callback.
const keepEvery = 256 << 10

// publishKeeper publishes a keeper, replacing any earlier one. It is a core
// publish, without waiting for the stream's acknowledgement: nothing
// depends on its outcome.
func (q *Queue) publishKeeper() {
	msg := &nats.Msg{Subject: q.names.keep, Header: nats.Header{"Nats-Rollup": []string{"sub"}}}
	if err := q.nc.PublishMsg(msg); err != nil {
		q.log.Debug("cannot publish the jobs stream's keeper", "err", err)
	}
}

// published counts n bytes of job messages stored and publishes a keeper
// every keepEvery bytes.
func (q *Queue) published(n int) {
	if q.sinceKeeper.Add(int64(n)) >= keepEvery {
		q.sinceKeeper.Store(0)
		q.publishKeeper()
	}
}
