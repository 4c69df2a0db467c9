package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/friendflow/friendflow/actions"
)

// ledgerTTL is how long a claim of actions.Ledger is kept: longer than a
// job can wait for its redelivery after a crash (the queue's store
// outlives a down time of days), so a request made before a crash is
// still known when its job runs again.
const ledgerTTL = 7 * 24 * time.Hour

// ledger is the queue's actions.Ledger: claims are keys of a once bucket,
// replicated like the jobs, named <job>.<key> (each part hashed), so
// that a replay can give up all of a job's claims at once.
type ledger struct{ q *Queue }

var _ actions.Ledger = ledger{}

func ledgerKey(jobID, key string) string {
	return "ledger-" + onceKey(jobID) + "." + onceKey(key)
}

func (l ledger) Claim(ctx context.Context, jobID, key string) (bool, error) {
	ctx, done, err := l.q.storeContext(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	b, err := l.q.bucket(ctx, ledgerTTL)
	if err != nil {
		return false, err
	}
	// An unknown outcome is an error: the caller does not make the
	// request now, and a later run finding the claim reports it as
	// possibly made, the safe side.
	_, err = b.kv.Create(ctx, ledgerKey(jobID, key), []byte{1})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	}
	return false, fmt.Errorf("queue: ledger: %w", err)
}

func (l ledger) Release(ctx context.Context, jobID, key string) error {
	return l.q.purgeLedger(ctx, ledgerKey(jobID, key))
}

// releaseJob gives up every claim of a job (a replay of its dead letter).
func (q *Queue) releaseJob(ctx context.Context, jobID string) error {
	return q.purgeLedger(ctx, "ledger-"+onceKey(jobID)+".*")
}

// purgeLedger purges the ledger keys matching pattern (see Forget: a purge,
// not a delete).
func (q *Queue) purgeLedger(ctx context.Context, pattern string) error {
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := q.bucket(ctx, ledgerTTL)
	if err != nil {
		return err
	}
	if err := b.stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+b.name+"."+pattern)); err != nil {
		return fmt.Errorf("queue: ledger: %w", err)
	}
	return nil
}
