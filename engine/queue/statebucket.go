package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// StateBucket creates or updates the key-value bucket ns_<suffix> of the
// queue's namespace for rule state (engine/state: counters), with the
// queue's replicas, file storage and owner metadata, and returns it.
// cfg.Bucket, Storage, Replicas and Metadata are set here. A bucket
// created for another SdkAppid is refused (*OwnerError). Creation is
// idempotent and retried while the cluster is not ready, within ctx.
func (q *Queue) StateBucket(ctx context.Context, suffix string, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Bucket = q.names.ns + "_" + suffix
	cfg.Storage = jetstream.FileStorage
	cfg.Replicas = q.cfg.Replicas
	var kv jetstream.KeyValue
	err := retrying(ctx, q.log, "create state bucket", func(ctx context.Context) error {
		stream := "KV_" + cfg.Bucket // a bucket's stream (ADR-8)
		var existing map[string]string
		s, err := q.js.Stream(ctx, stream)
		switch {
		case err == nil:
			existing = s.CachedInfo().Config.Metadata
			if err := q.checkOwner(stream, existing); err != nil {
				return err
			}
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return err
		}
		cfg.Metadata = q.metadata(existing)
		if kv, err = q.js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return err
		}
		// Reads from the stream's leader only: a bucket allows direct gets
		// from any replica, which may lag behind the last write, and a
		// count read just after it must include it (a compare-and-set
		// from a stale read only costs a retry, a stale count is wrong).
		if s, err = q.js.Stream(ctx, stream); err != nil {
			return err
		}
		if sc := s.CachedInfo().Config; sc.AllowDirect || sc.MirrorDirect {
			sc.AllowDirect, sc.MirrorDirect = false, false
			if _, err = q.js.UpdateStream(ctx, sc); err != nil {
				return err
			}
		}
		kv, err = q.js.KeyValue(ctx, cfg.Bucket) // bound again: it reads AllowDirect once
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue: state bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
