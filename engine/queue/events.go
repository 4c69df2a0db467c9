package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The recorded events (engine/record) live in two limits streams of the
// namespace, created by Open when Config.RecordEvents is not 0. The
// recording packs many events, or job updates, into one message (see
// engine/record's codec.go); here they are bytes.
//
//   - <NS>_EVENTS on <ns>.events.<n>: batches of n recorded events (the
//     subject says how many, so that the stream's per-subject counts add
//     up to the events it holds without reading them). At most
//     Config.RecordEvents messages and Config.RecordEvents KiB (a
//     recorded event is some 0.5 to 2 KiB), for Config.RecordMaxAge: the
//     oldest go first.
//   - <NS>_TRACE on <ns>.trace.<bucket>: what became of the events' jobs
//     afterwards (retries, dead letter, replay, done), each callback's
//     updates on one of a few subjects. A stream of its own rather than
//     updates in the events stream: there they would count against
//     --record-events and evict events, and a trace would be searched
//     for among every event; here it is read from one subject, from the
//     event's time on.
//
// Both allow direct gets, so every replica reads them (listing pages,
// one event, a trace) with batched direct gets starting at a sequence,
// never by loading a stream.
const (
	// DefaultRecordEvents and DefaultRecordMaxAge are --record-events'
	// and --record-max-age's defaults.
	DefaultRecordEvents = 10000
	DefaultRecordMaxAge = 7 * 24 * time.Hour
	// recordBytesPerEvent and traceBytesPerEvent size the streams' byte
	// limits from RecordEvents; minRecordBytes is their floor.
	recordBytesPerEvent = 1 << 10
	traceBytesPerEvent  = 512
	minRecordBytes      = 1 << 20
	// MaxEventsBatch is the most messages one direct get returns, and
	// maxReadBytes about the most bytes: a reader holds no more.
	MaxEventsBatch = 256
	maxReadBytes   = 1 << 20
)

// setupEvents creates or updates the two streams of recorded events.
func (q *Queue) setupEvents(ctx context.Context) error {
	n := q.names
	if q.cfg.RecordEvents <= 0 {
		return nil
	}
	age := q.cfg.RecordMaxAge
	if age <= 0 {
		age = DefaultRecordMaxAge
	}
	var err error
	q.events, _, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        n.eventsStream,
		Description: "friendflow recorded events: batches of events, JSONL",
		Subjects:    []string{n.eventsPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    q.cfg.Replicas,
		Duplicates:  min(time.Minute, age),
		MaxMsgs:     int64(q.cfg.RecordEvents),
		MaxBytes:    max(int64(q.cfg.RecordEvents)*recordBytesPerEvent, minRecordBytes),
		MaxAge:      age,
		AllowDirect: true,
	})
	if err != nil {
		return recordRoom(err, q.cfg.RecordEvents)
	}
	_, _, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        n.traceStream,
		Description: "friendflow recorded events' job updates, JSONL, by callback bucket",
		Subjects:    []string{n.tracePrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    q.cfg.Replicas,
		Duplicates:  min(time.Minute, age),
		MaxMsgs:     -1,
		MaxBytes:    max(int64(q.cfg.RecordEvents)*traceBytesPerEvent, minRecordBytes),
		MaxAge:      age,
		AllowDirect: true,
	})
	return recordRoom(err, q.cfg.RecordEvents)
}

// recordRoom explains the error of a recording stream whose byte limit
// does not fit in the store: JetStream reserves it up front (as for the
// dead letters, setup).
func recordRoom(err error, events int) error {
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == 10047 {
		return fmt.Errorf("queue: the recording of %d events (%d MiB) does not fit in the store's free space: "+
			"lower the number of recorded events or give the store more room: %w", events, max(int64(events)*recordBytesPerEvent, minRecordBytes)>>20, err)
	}
	return err
}

// Recording says whether the events streams exist (Config.RecordEvents).
func (q *Queue) Recording() bool { return q.events != nil }

// RecordLimits are the streams' bounds: events kept and for how long.
func (q *Queue) RecordLimits() (events int, maxAge time.Duration) {
	if q.events == nil {
		return 0, 0
	}
	c := q.events.CachedInfo().Config
	return int(c.MaxMsgs), c.MaxAge
}

// Pending is a recorded message on its way: Wait says whether it was
// stored.
type Pending struct{ f jetstream.PubAckFuture }

// Wait waits for the store's answer, or ctx.
func (p Pending) Wait(ctx context.Context) error {
	select {
	case <-p.f.Ok():
		return nil
	case err := <-p.f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublishEvents stores a message of n recorded events without waiting:
// the caller waits on the Pending of a whole batch at once.
func (q *Queue) PublishEvents(n int, data []byte) (Pending, error) {
	return q.publishRecord(&nats.Msg{Subject: q.names.eventsPrefix + strconv.Itoa(n), Data: data})
}

// PublishTrace stores job updates on the trace subject bucket (a subject
// token) without waiting.
func (q *Queue) PublishTrace(bucket string, data []byte) (Pending, error) {
	return q.publishRecord(&nats.Msg{Subject: q.names.tracePrefix + bucket, Data: data})
}

func (q *Queue) publishRecord(m *nats.Msg) (Pending, error) {
	if q.events == nil {
		return Pending{}, errors.New("queue: recording is off")
	}
	if q.closed.Load() {
		return Pending{}, ErrStopped
	}
	f, err := q.recJS.PublishMsgAsync(m)
	if err != nil {
		return Pending{}, fmt.Errorf("queue: record: %w", err)
	}
	return Pending{f}, nil
}

// EventBounds are the first and last sequences of the events stream and
// how many events its messages hold (0, 0, 0 when empty or off).
func (q *Queue) EventBounds(ctx context.Context) (first, last, events uint64, err error) {
	if q.events == nil {
		return 0, 0, 0, nil
	}
	info, err := q.events.Info(ctx, jetstream.WithSubjectFilter(q.names.eventsPrefix+"*"))
	if err != nil {
		return 0, 0, 0, fmt.Errorf("queue: events stream: %w", err)
	}
	for subj, msgs := range info.State.Subjects {
		if n, err := strconv.ParseUint(strings.TrimPrefix(subj, q.names.eventsPrefix), 10, 64); err == nil {
			events += n * msgs
		}
	}
	return info.State.FirstSeq, info.State.LastSeq, events, nil
}

// RecordedMsg is a message of the events or trace streams.
type RecordedMsg struct {
	Seq  uint64
	Time time.Time // when the store received it
	Data []byte
}

// directReq is a batched direct get (JSApiMsgGetRequest).
// https://github.com/nats-io/nats-architecture-and-design/blob/main/adr/ADR-31.md
type directReq struct {
	Seq       uint64     `json:"seq,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	UpToSeq   uint64     `json:"up_to_seq,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
}

// ReadEvents calls fn with the messages of recorded events whose
// sequences are from..to (to 0: the last), oldest first, at most max of
// them (at most MaxEventsBatch) and about maxReadBytes, until fn returns
// false. It returns the sequence after the last one read, 0 when none was
// left: a caller reads on from there.
func (q *Queue) ReadEvents(ctx context.Context, from, to uint64, max int, fn func(RecordedMsg) bool) (next uint64, err error) {
	if q.events == nil {
		return 0, nil
	}
	return q.direct(ctx, q.names.eventsStream, directReq{Seq: max64(from, 1), Batch: clampBatch(max), UpToSeq: to, MaxBytes: maxReadBytes}, fn)
}

// ReadTrace calls fn with the job updates of trace subject bucket stored
// at or after since, oldest first, a batch at a time, until fn returns
// false.
func (q *Queue) ReadTrace(ctx context.Context, bucket string, since time.Time, fn func(RecordedMsg) bool) error {
	if q.events == nil {
		return nil
	}
	req := directReq{NextFor: q.names.tracePrefix + bucket, Batch: MaxEventsBatch, StartTime: &since, MaxBytes: maxReadBytes}
	for {
		more := true
		next, err := q.direct(ctx, q.names.traceStream, req, func(m RecordedMsg) bool {
			more = fn(m)
			return more
		})
		if err != nil || !more || next == 0 {
			return err
		}
		req.Seq, req.StartTime = next, nil
	}
}

func clampBatch(n int) int {
	if n <= 0 || n > MaxEventsBatch {
		return MaxEventsBatch
	}
	return n
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// direct runs one batched direct get: the server answers with the
// messages, then an end-of-batch status (204), or 404 when there is none.
// At most a batch is ever buffered.
func (q *Queue) direct(ctx context.Context, stream string, req directReq, fn func(RecordedMsg) bool) (uint64, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	inbox := nats.NewInbox()
	sub, err := q.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, fmt.Errorf("queue: read %s: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := q.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return 0, fmt.Errorf("queue: read %s: %w", stream, err)
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var next uint64
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return next, fmt.Errorf("queue: read %s: %w", stream, err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204", "404":
				return next, nil
			}
			return next, fmt.Errorf("queue: read %s: %s %s", stream, status, m.Header.Get("Description"))
		}
		seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
		next = seq + 1
		if !fn(RecordedMsg{Seq: seq, Time: at, Data: m.Data}) {
			return next, nil
		}
	}
}

// FollowEvents calls fn with every event stored from sequence from on (0:
// only those stored from now on), as they come, until ctx is done or fn
// returns false. It reads with an ordered consumer, which the server
// removes when it is no longer read.
func (q *Queue) FollowEvents(ctx context.Context, from uint64, fn func(RecordedMsg) bool) error {
	if q.events == nil {
		<-ctx.Done()
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	if from > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	c, err := q.js.OrderedConsumer(ctx, q.names.eventsStream, cfg)
	if err != nil {
		return fmt.Errorf("queue: follow events: %w", err)
	}
	it, err := c.Messages(jetstream.PullMaxBytes(maxReadBytes)) // a message holds up to 256 events
	if err != nil {
		return fmt.Errorf("queue: follow events: %w", err)
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("queue: follow events: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		if !fn(RecordedMsg{Seq: md.Sequence.Stream, Time: md.Timestamp, Data: m.Data()}) {
			return nil
		}
	}
}
