package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// onceBucket is a key-value bucket whose keys expire after the bucket's TTL.
type onceBucket struct {
	name   string
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for Forget
}

// onceBucketName names the bucket for ttl: one bucket per distinct ttl.
func onceBucketName(ttl time.Duration) string {
	switch {
	case ttl == 0:
		return "friendflow_once_forever"
	case ttl%time.Second == 0:
		return "friendflow_once_" + strconv.FormatInt(int64(ttl/time.Second), 10) + "s"
	default:
		return "friendflow_once_" + strconv.FormatInt(int64(ttl/time.Millisecond), 10) + "ms"
	}
}

// onceKey turns any key into a valid KV key ([-/_=.a-zA-Z0-9]) of fixed
// length, without collisions in practice.
func onceKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// normaliseTTL rounds ttl up to whole milliseconds (the bucket name's unit).
func normaliseTTL(ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("queue: negative once ttl %v", ttl)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	if ttl != 0 && ttl < 100*time.Millisecond {
		return 0, fmt.Errorf("queue: once ttl %v is below JetStream's 100ms minimum", ttl)
	}
	return ttl, nil
}

// bucket returns the bucket for ttl, creating it on first use. Creation is
// idempotent, so replicas racing to create the same bucket all succeed.
// bucketCreateTimeout bounds creating a once bucket.
const bucketCreateTimeout = 5 * time.Second

func (q *Queue) bucket(ctx context.Context, ttl time.Duration) (*onceBucket, error) {
	ttl, err := normaliseTTL(ttl)
	if err != nil {
		return nil, err
	}
	q.onceMu.Lock()
	defer q.onceMu.Unlock()
	if b, ok := q.onceBuckets[ttl]; ok {
		return b, nil
	}
	b := &onceBucket{name: onceBucketName(ttl)}
	// Bounded: the lock is held meanwhile, and every Once waits for it.
	ctx, cancel := context.WithTimeout(ctx, bucketCreateTimeout)
	defer cancel()
	err = retrying(ctx, q.log, "create once bucket", func(ctx context.Context) error {
		var err error
		// Bucket-level TTL only: with per-key TTL, a delete marker that
		// expires between Create's two internal calls makes Create fail
		// with "wrong last sequence", which matches ErrKeyExists: a false
		// duplicate.
		b.kv, err = q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      b.name,
			Description: "friendflow once keys, expiring after " + ttl.String(),
			History:     1,
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
			Replicas:    q.cfg.Replicas,
		})
		if err != nil {
			return err
		}
		b.stream, err = q.js.Stream(ctx, "KV_"+b.name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue: once bucket %s: %w", b.name, err)
	}
	q.onceBuckets[ttl] = b
	return b, nil
}

// Once records key for ttl (0: forever) and reports whether this is the
// first time it was seen within ttl. Across replicas sharing a cluster
// exactly one caller gets true. The key may be any string; it is stored as
// its SHA-256.
func (q *Queue) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	b, err := q.bucket(ctx, ttl)
	if err != nil {
		return false, err
	}
	_, err = b.kv.Create(ctx, onceKey(key), nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	default:
		return false, fmt.Errorf("queue: once: %w", err)
	}
}

// Forget undoes Once for key, for when the enqueue that followed it failed.
// It purges the key's subject instead of deleting the key: a delete leaves a
// marker, and a marker expiring between the two steps of a later Create is
// the race that makes Create report a false "exists".
func (q *Queue) Forget(ctx context.Context, key string, ttl time.Duration) error {
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := q.bucket(ctx, ttl)
	if err != nil {
		return err
	}
	subj := "$KV." + b.name + "." + onceKey(key)
	if err := b.stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return fmt.Errorf("queue: forget: %w", err)
	}
	return nil
}
