package queue

import (
	"context"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// ledgerTTL is how long a claim of actions.Ledger is kept: longer than a
// job can wait for its redelivery after a crash (the queue's store
// outlives a down time of days), so a request made before a crash is
// still known when its job runs again.
const ledgerTTL = 7 * 24 * time.Hour

// ledger is the queue's actions.Ledger: claims are keys of a once bucket,
// replicated like the jobs.
type ledger struct{ q *Queue }

func (l ledger) Claim(ctx context.Context, key string) (bool, error) {
	return l.q.Once(ctx, "ledger:"+key, ledgerTTL)
}

func (l ledger) Release(ctx context.Context, key string) error {
	return l.q.Forget(ctx, "ledger:"+key, ledgerTTL)
}

var _ actions.Ledger = ledger{}
