package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ownerKey is the stream metadata key recording the SdkAppid a stream was
// created for (stream metadata: https://docs.nats.io/nats-concepts/jetstream/streams#configuration).
const ownerKey = "friendflow.sdkappid"

// OwnerError is Open's refusal to use a namespace whose streams were created
// for another SdkAppid: two apps sharing streams would run each other's
// jobs with each other's keys.
type OwnerError struct {
	Namespace string
	Stream    string
	Owner     string // the SdkAppid recorded in the stream
	SdkAppid  int64  // Config.SdkAppid
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("queue: stream %s of namespace %q was created for SdkAppid %s, not %d",
		e.Stream, e.Namespace, e.Owner, e.SdkAppid)
}

// checkOwner fails when the stream's metadata names another SdkAppid. A
// stream without one (created before namespaces, or with SdkAppid 0) is
// adopted by the next update.
func (q *Queue) checkOwner(stream string, meta map[string]string) error {
	owner, ok := meta[ownerKey]
	if !ok || q.cfg.SdkAppid == 0 || owner == strconv.FormatInt(q.cfg.SdkAppid, 10) {
		return nil
	}
	return &OwnerError{Namespace: q.names.ns, Stream: stream, Owner: owner, SdkAppid: q.cfg.SdkAppid}
}

// metadata is the metadata to write on a stream that has existing: ours
// added, the server's own (_nats.*) left to the server.
func (q *Queue) metadata(existing map[string]string) map[string]string {
	m := make(map[string]string, len(existing)+1)
	for k, v := range existing {
		if !strings.HasPrefix(k, "_nats.") {
			m[k] = v
		}
	}
	if q.cfg.SdkAppid != 0 {
		m[ownerKey] = strconv.FormatInt(q.cfg.SdkAppid, 10)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// ensureStream creates the stream, or checks its owner and updates it (an
// update applies changed limits). It also returns the state of the stream
// before the update: the zero state for a stream it created. Two replicas creating it at once both
// succeed when their configurations agree; otherwise the loser's create
// fails with "name already in use", which is retried (retryable) and finds
// the winner's stream.
func (q *Queue) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, jetstream.StreamState, error) {
	var before jetstream.StreamState
	s, err := q.js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		before = s.CachedInfo().State
		existing := s.CachedInfo().Config.Metadata
		if err := q.checkOwner(cfg.Name, existing); err != nil {
			return nil, before, err
		}
		cfg.Metadata = q.metadata(existing)
		s, err = q.js.UpdateStream(ctx, cfg)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg.Metadata = q.metadata(nil)
		s, err = q.js.CreateStream(ctx, cfg)
	}
	if err != nil {
		return nil, before, fmt.Errorf("queue: stream %s: %w", cfg.Name, err)
	}
	return s, before, nil
}
