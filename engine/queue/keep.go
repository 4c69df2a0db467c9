package queue

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The jobs stream's keeper: a message no consumer takes, so that the
// stream's newest block does not empty each time the workers catch up.
//
// Why: JetStream's file store keeps a stream in block files and writes into
// the newest. A work-queue stream removes each message once acknowledged,
// and when that empties the newest block the store deletes the block and
// creates a new file for the next write (nats-server v2.15 filestore.go,
// removeMsgBlock → newMsgBlockForWrite). Under load the workers keep up, so
// that happened every few messages: a CPU profile of bench/load.sh showed
// creating those files (openat) at 13 % of friendflow's CPU.
//
// A keeper kept for good has a cost too: the newest block then grows to its
// full size (4 MiB for a work-queue stream) and the store keeps it and the
// block before it in memory and compacts them, which raised the peak memory
// under load by about 17 MiB. So the keeper cycles: published, removed after
// keepEvery bytes of job messages (the next time the workers catch up, the
// store replaces the block, once), and published again keepGap bytes later,
// into the new block. Blocks stay about keepEvery small, and a block file
// is created once per keepEvery bytes instead of every few messages.
//
// Nothing depends on the keeper: a keeper lost, purged by another replica or
// never stored only costs file churn until the next one. Its subject is
// outside the jobs' wildcard, which is the consumer's filter.

const (
	// keepEvery is how many bytes of job messages a keeper stays for.
	keepEvery = 256 << 10
	// keepGap is how many bytes of job messages are stored without a
	// keeper: enough for the workers to catch up once and the store to
	// start a new block.
	keepGap = 32 << 10
)

// keeperState is where the queue is in the keeper's cycle.
type keeperState struct {
	bytes   int64 // of job messages since the last change
	kept    bool  // a keeper was published and not yet removed
	purging bool  // its removal is under way
}

// publishKeeper publishes a keeper. It is a core publish, without waiting
// for the stream's acknowledgement: nothing depends on its outcome.
func (q *Queue) publishKeeper() {
	if err := q.nc.PublishMsg(&nats.Msg{Subject: q.names.keep}); err != nil {
		q.log.Debug("cannot publish the jobs stream's keeper", "err", err)
	}
}

// published counts n bytes of job messages stored and moves the keeper's
// cycle on. The removal runs on its own goroutine: it waits for the
// server, which the committer calling this must not.
func (q *Queue) published(n int) {
	q.keeperMu.Lock()
	defer q.keeperMu.Unlock()
	k := &q.keeper
	k.bytes += int64(n)
	switch {
	case k.purging:
	case k.kept && k.bytes >= keepEvery:
		k.kept, k.purging = false, true
		go q.removeKeepers()
	case !k.kept && k.bytes >= keepGap:
		k.kept, k.bytes = true, 0
		q.publishKeeper()
	}
}

// startKeeper begins the cycle with a keeper (at Open).
func (q *Queue) startKeeper() {
	q.keeperMu.Lock()
	defer q.keeperMu.Unlock()
	q.keeper = keeperState{kept: true}
	q.publishKeeper()
}

// removeKeepers purges the keeper subject: this replica's keeper and any
// other's, whose cycles publish theirs again.
func (q *Queue) removeKeepers() {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	if err := q.jobs.Purge(ctx, jetstream.WithPurgeSubject(q.names.keep)); err != nil {
		q.log.Debug("cannot remove the jobs stream's keeper", "err", err)
	}
	q.keeperMu.Lock()
	defer q.keeperMu.Unlock()
	q.keeper.purging, q.keeper.bytes = false, 0
}
