package actions

import "context"

// Ledger records, durably, requests that must not be made twice. A kind
// whose request cannot be repeated without a duplicate effect (a batch
// message: IM documents no dedup for openim/batchsendmsg) claims it before
// making it, under its job's id. Finding the claim taken means an earlier
// run made the request, or may have (it stopped before its progress was
// stored): the kind then reports the request's accounts instead of making
// it again. The claims of a job are given up when its dead letter is
// replayed, so an operator's replay makes the requests.
type Ledger interface {
	// Claim claims key within the job's claims; first is false when it
	// was claimed before.
	Claim(ctx context.Context, jobID, key string) (first bool, err error)
	// Release gives key up: the request surely did not take effect.
	Release(ctx context.Context, jobID, key string) error
}

type ledgerKey struct{}

// WithLedger returns ctx carrying l, for the kinds run under it.
func WithLedger(ctx context.Context, l Ledger) context.Context {
	return context.WithValue(ctx, ledgerKey{}, l)
}

// LedgerFrom returns the Ledger ctx carries, or nil (a kind run outside
// the queue: no claims, requests made as asked).
func LedgerFrom(ctx context.Context) Ledger {
	l, _ := ctx.Value(ledgerKey{}).(Ledger)
	return l
}
