package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
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
// One bucket is created at a time; a caller waits for that, and retries the
// creation (a cluster electing leaders answers "stream not found" or not
// at all for a while), within its own context: the callback's deadline, or
// defaultEnqueueTimeout when it has none.
func (q *Queue) bucket(ctx context.Context, ttl time.Duration) (*onceBucket, error) {
	ttl, err := normaliseTTL(ttl)
	if err != nil {
		return nil, err
	}
	if b := q.cachedBucket(ttl); b != nil {
		return b, nil
	}
	name := q.names.onceBucket(ttl)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultEnqueueTimeout)
		defer cancel()
	}
	select {
	case q.onceCreate <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("queue: once bucket %s: waiting for another bucket's creation: %w", name, ctx.Err())
	}
	defer func() { <-q.onceCreate }()
	if b := q.cachedBucket(ttl); b != nil {
		return b, nil // created while this caller waited
	}
	b := &onceBucket{name: name}
	if err := retrying(ctx, q.log, "create once bucket", func(ctx context.Context) error {
		return q.createBucket(ctx, b, ttl, "friendflow once keys, expiring after "+ttl.String())
	}); err != nil {
		return nil, fmt.Errorf("queue: once bucket %s: %w", b.name, err)
	}
	q.onceMu.Lock()
	q.onceBuckets[ttl] = b
	q.onceMu.Unlock()
	return b, nil
}

func (q *Queue) cachedBucket(ttl time.Duration) *onceBucket {
	q.onceMu.Lock()
	defer q.onceMu.Unlock()
	return q.onceBuckets[ttl]
}

// createBucket creates or updates b's bucket, refusing one created for
// another SdkAppid.
func (q *Queue) createBucket(ctx context.Context, b *onceBucket, ttl time.Duration, description string) error {
	stream := "KV_" + b.name // a bucket's stream (https://github.com/nats-io/nats-architecture-and-design/blob/main/adr/ADR-8.md)
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
	// Bucket-level TTL only: with per-key TTL, a delete marker that
	// expires between Create's two internal calls makes Create fail with
	// "wrong last sequence", which matches ErrKeyExists: a false duplicate.
	b.kv, err = q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.name,
		Description: description,
		History:     1,
		TTL:         ttl,
		MaxBytes:    q.cfg.OnceMaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    q.cfg.Replicas,
		Metadata:    q.metadata(existing),
	})
	if err != nil {
		return err
	}
	b.stream, err = q.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	// A bucket discards new keys when full (its stream's Discard is
	// DiscardNew): every callback of a rule with once would then fail
	// until keys expire. Old keys go first instead.
	if sc := b.stream.CachedInfo().Config; sc.Discard != jetstream.DiscardOld {
		sc.Discard = jetstream.DiscardOld
		if b.stream, err = q.js.UpdateStream(ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

// onceStats adds up the once buckets this queue has used: their keys and
// bytes.
func (q *Queue) onceStats(ctx context.Context) (keys int, size int64, err error) {
	q.onceMu.Lock()
	buckets := make([]*onceBucket, 0, len(q.onceBuckets))
	for _, b := range q.onceBuckets {
		buckets = append(buckets, b)
	}
	q.onceMu.Unlock()
	for _, b := range buckets {
		info, err := b.stream.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		keys += int(info.State.Msgs)
		size += int64(info.State.Bytes)
	}
	return keys, size, nil
}

// Once records key for ttl (0: forever) and reports whether this is the
// first time it was seen within ttl; OnceBy with no callback.
func (q *Queue) Once(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	first, _, err = q.OnceBy(ctx, key, ttl, "")
	return first, err
}

// OnceSeen is when, and by which callback, a once key was first claimed:
// what a later callback skipped by the key shows in its recorded trace.
type OnceSeen struct {
	At         time.Time // when the bucket stored the key; zero if unknown
	CallbackID string    // "" for keys claimed before callbacks were stored with them
}

// OnceSkip is a match whose actions a once key skipped: event Event's
// match of Rule, by the rendered Key, first seen as Seen says.
type OnceSkip struct {
	Event int
	Rule  string
	Key   string
	Seen  OnceSeen
}

// maxOnceCallbackID bounds the callback ID a once key's value keeps: the
// bucket holds one value per key, so its size is keys times this.
const maxOnceCallbackID = 64

// onceValue is the value a claim stores: a token of its own (for
// settleOnce), then the claiming callback's ID, clipped.
func onceValue(callbackID string) []byte {
	if len(callbackID) > maxOnceCallbackID {
		callbackID = callbackID[:maxOnceCallbackID]
	}
	v := strconv.AppendUint(make([]byte, 0, 16+len(callbackID)), rand.Uint64(), 36)
	v = append(v, ' ')
	return append(v, callbackID...)
}

// seenOf reads a stored claim. Values stored before they carried the
// callback (a token alone) read with the time only.
func seenOf(e jetstream.KeyValueEntry) OnceSeen {
	s := OnceSeen{At: e.Created()}
	if _, id, ok := bytes.Cut(e.Value(), []byte{' '}); ok {
		s.CallbackID = string(id)
	}
	return s
}

// OnceBy records key for ttl (0: forever), claimed by callbackID, and
// reports whether this is the first time it was seen within ttl; when it
// is not, seen says when and by which callback it was (as well as the
// bucket still says: zero when it cannot be read). Across replicas sharing
// a cluster exactly one caller gets true. The key may be any string; it is
// stored as its SHA-256.
//
// A create whose outcome is unknown (a timeout, or no answer while the
// bucket's leader fails over) may have stored the key all the same: then
// an error here would fail the callback, and its retry would find the key
// and skip the actions for good. So each call stores a token of its own,
// and after an unknown outcome it retries within ctx (the callback's
// deadline, or defaultEnqueueTimeout): finding its own token means the
// earlier create did store the key.
func (q *Queue) OnceBy(ctx context.Context, key string, ttl time.Duration, callbackID string) (first bool, seen OnceSeen, err error) {
	ctx, done, err := q.storeContext(ctx)
	if err != nil {
		return false, seen, err
	}
	defer done()
	b, err := q.bucket(ctx, ttl)
	if err != nil {
		return false, seen, err
	}
	k := onceKey(key)
	token := onceValue(callbackID)
	_, err = b.kv.Create(ctx, k, token)
	switch {
	case err == nil:
		return true, seen, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		// Only a skip pays for this read. The key may expire meanwhile:
		// the skip stands, shown without its first sighting.
		if e, gerr := b.kv.Get(ctx, k); gerr == nil {
			seen = seenOf(e)
		}
		return false, seen, nil
	case !retryable(err):
		return false, seen, fmt.Errorf("queue: once: %w", err)
	}
	if first, seen, err = q.settleOnce(ctx, b, k, token); err != nil {
		return false, seen, fmt.Errorf("queue: once: %w", err)
	}
	return first, seen, nil
}

// settleOnce finds out whether a create of k with token whose outcome is
// unknown stored it, creating k again if it did not.
func (q *Queue) settleOnce(ctx context.Context, b *onceBucket, k string, token []byte) (first bool, seen OnceSeen, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultEnqueueTimeout)
		defer cancel()
	}
	whose := func(ctx context.Context) error {
		e, err := b.kv.Get(ctx, k)
		if err == nil {
			first = bytes.Equal(e.Value(), token)
			if !first {
				seen = seenOf(e)
			}
		}
		return err
	}
	err = retrying(ctx, q.log, "once", func(ctx context.Context) error {
		err := whose(ctx)
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		_, err = b.kv.Create(ctx, k, token)
		switch {
		case err == nil:
			first = true
			return nil
		case errors.Is(err, jetstream.ErrKeyExists): // stored meanwhile: by whom?
			return whose(ctx)
		}
		return err
	})
	return first, seen, err
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
