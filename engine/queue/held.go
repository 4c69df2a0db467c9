package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The held path: a callback's jobs run from memory once stored.
//
// A replica stores its callbacks' groups on a subject of its own in the
// held stream (<ns>.held.<replica id>.<n>, the id random per Open) and,
// once the server has acknowledged the publish, hands each group straight
// to its own workers in memory: nothing is delivered back by the server and
// nothing is acknowledged per message. Finished groups are removed in bulk,
// by a purge of the replica's subject up to the lowest sequence it has not
// finished (one API call for many groups). The stored copy is only for
// recovery: each replica holds a lease, a key of the replicas bucket that
// expires unless renewed; a subject whose lease is gone belongs to a
// replica that died, and the replica that claims it (a key-value create,
// which only one replica wins) republishes its messages to the shared
// work queue, where the consumer delivers them with acknowledgements as
// any other message, and purges them. A stopping replica hands its
// unfinished groups to the shared queue itself.
//
// What does not fit (a job due later, a retry, a group waiting for its
// profiles, a failed hand-off) leaves the held path for the shared queue,
// as the consumer's messages do.

const (
	// defaultLeaseTTL is how long a replica's lease outlives its last
	// renewal: how long a crashed replica's stored jobs wait before
	// another replica takes them over (the shared queue's ack wait plays
	// the same part for its messages).
	defaultLeaseTTL = 15 * time.Second
	// maxHeldJobs bounds the jobs a replica holds in memory, stored and
	// not finished; past it, groups go to the shared queue (and to
	// whichever replica has a free worker).
	maxHeldJobs = 8192
	// heldDupWindow is the held stream's Msg-Id window: it covers an
	// enqueue's retries (defaultEnqueueTimeout) with room to spare. Held
	// messages are never redelivered, so unlike the shared queue's it
	// need not cover an ack wait; the server keeps the window's ids in
	// memory, and the held stream takes most of the messages.
	heldDupWindow = 15 * time.Second
	// purgeEvery and purgeInterval: finished groups are purged after
	// purgeEvery of them, or purgeInterval after the first.
	purgeEvery    = 64
	purgeInterval = 100 * time.Millisecond
	// hdrTaken marks a message republished by a takeover: its jobs may
	// have run already (a redelivery).
	hdrTaken   = "Friendflow-Taken"
	maxUnknown = 1024
	// heldSeqBit marks a held group's sequence where the worker uses a
	// message's sequence in the Msg-Ids of what it publishes (retries,
	// hand-offs, dead letters): a held sequence and a shared queue's one
	// can be equal, and two attempts of one job must not share an id.
	heldSeqBit = 1 << 63
)

// heldGroup is one stored group run from memory.
type heldGroup struct {
	seq  uint64
	jobs int
	data []byte
}

// heldLog is this replica's subject of the held stream: its leases and the
// groups stored on it and not finished yet.
type heldLog struct {
	id     string
	prefix string // subject + number of jobs
	filter string // every subject of the replica

	mu       sync.Mutex
	open     map[uint64]*heldGroup // stored, not finished
	jobs     int                   // in open, and reserved by publishes in flight
	inflight map[uint64]uint64     // publish token → lowest sequence it can be stored at
	token    uint64
	maxSeq   uint64 // highest sequence stored
	purged   uint64 // everything below was purged
	finished int    // since the last purge
	stranded []*heldGroup
	lost     bool // the lease was lost: no more groups
	// unknown are the Msg-Ids of publishes that failed: stored or not.
	// A duplicate of one was never run (bounded: forgotten past
	// maxUnknown, a duplicate of those is taken as run).
	unknown map[string]struct{}
	kick    chan struct{}
}

func newReplicaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newHeldLog(n names) *heldLog {
	id := newReplicaID()
	return &heldLog{
		id: id, prefix: n.heldPrefix + id + ".", filter: n.heldPrefix + id + ".*",
		open: make(map[uint64]*heldGroup), inflight: make(map[uint64]uint64),
		kick: make(chan struct{}, 1), unknown: make(map[string]struct{}),
	}
}

// reserve makes room for a group of jobs about to be published; ok is
// false when the replica holds too many.
func (h *heldLog) reserve(jobs int) (token uint64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost || h.jobs+jobs > maxHeldJobs {
		return 0, false
	}
	h.jobs += jobs
	h.token++
	h.inflight[h.token] = h.maxSeq + 1
	return h.token, true
}

// stored records a group the server acknowledged at seq (or, failed,
// gives its room back when g is nil). It returns false for a group
// already held (a duplicate publish).
func (h *heldLog) stored(token uint64, jobs int, g *heldGroup) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.inflight, token)
	if g == nil || h.open[g.seq] != nil {
		h.jobs -= jobs
		return false
	}
	h.open[g.seq] = g
	h.maxSeq = max(h.maxSeq, g.seq)
	return true
}

// finish forgets a group whose jobs are all concluded.
func (h *heldLog) finish(g *heldGroup) {
	h.mu.Lock()
	if _, ok := h.open[g.seq]; ok {
		delete(h.open, g.seq)
		h.jobs -= g.jobs
	}
	h.finished++
	kick := h.finished >= purgeEvery
	h.mu.Unlock()
	if kick {
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

// floor is the lowest sequence that may not be purged, and whether it is
// above the last purge.
func (h *heldLog) floor() (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.maxSeq + 1
	for s := range h.open {
		f = min(f, s)
	}
	for _, s := range h.inflight {
		f = min(f, s)
	}
	h.finished = 0
	return f, f > h.purged && f > 1
}

// held is the queue's held path: its stream, the replicas' leases, this
// replica's log, and the loops that renew, purge and take over.
type held struct {
	stream jetstream.Stream
	leases jetstream.KeyValue
	ttl    time.Duration
	log    *heldLog
	rev    uint64 // of this replica's lease key; only the lease loop uses it
	work   chan *heldGroup
	stop   chan struct{}
	loops  sync.WaitGroup
}

// setupHeld creates the held stream and the replicas bucket, takes a
// lease, and starts the loops. An embedded server without a listener is
// this process's alone: every subject found at Open is a dead process's,
// taken over at once.
func (q *Queue) setupHeld(ctx context.Context) error {
	ttl := q.cfg.leaseTTL
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	h := &held{ttl: ttl, log: newHeldLog(q.names), work: make(chan *heldGroup, maxHeldJobs), stop: make(chan struct{})}
	err := retrying(ctx, q.log, "set up the held stream", func(ctx context.Context) error {
		var err error
		h.stream, _, err = q.ensureStream(ctx, jetstream.StreamConfig{
			Name:        q.names.heldStream,
			Description: "friendflow jobs run from memory: one subject per replica, purged as they finish",
			Subjects:    []string{q.names.heldSubjects},
			// A work queue only for its store's smaller blocks (4 MiB, not
			// a limits stream's 8 MiB: the newest block is held in memory
			// while written); no consumer reads it, messages leave by purge.
			Retention:  jetstream.WorkQueuePolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   q.cfg.Replicas,
			Duplicates: heldDupWindow,
			MaxMsgs:    -1,
			MaxBytes:   -1,
		})
		return err
	})
	if err != nil {
		return err
	}
	if h.leases, err = q.StateBucket(ctx, "replicas", jetstream.KeyValueConfig{
		Description: "friendflow replicas' leases on their held jobs",
		History:     1,
		TTL:         ttl,
	}); err != nil {
		return err
	}
	if err := retrying(ctx, q.log, "take a lease", func(ctx context.Context) error {
		rev, err := h.leases.Create(ctx, h.log.id, []byte("alive"))
		h.rev = rev
		return err
	}); err != nil {
		return fmt.Errorf("queue: lease: %w", err)
	}
	q.held = h
	if q.ns != nil && q.cfg.Listen == "" {
		q.takeOver(ctx, true)
	}
	// Held groups wait in memory for Run's workers, once they start.
	q.fast.Store(q.cfg.Registry != nil)
	h.loops.Add(3)
	go q.leaseLoop()
	go q.scanLoop()
	go q.purgeLoop()
	return nil
}

// heldFor reserves room on the held path for a group of jobs; false when
// the group must go to the shared queue: no workers running here, the
// queue stopping, or too many jobs held already.
func (q *Queue) heldFor(jobs int) (uint64, bool) {
	if q.held == nil || !q.fast.Load() || q.isStopping() {
		return 0, false
	}
	return q.held.log.reserve(jobs)
}

// heldStored records the outcome of a held group's publish and, stored,
// hands the group to the workers. A duplicate at the first attempt is a
// callback enqueued again: it was run already, or is held, unless its
// first publish failed (stored, perhaps, but never handed to the
// workers). A duplicate after a retry is most likely this publish's own
// earlier attempt, stored though its answer was lost: it runs (at least
// once).
func (q *Queue) heldStored(token uint64, jobs int, data []byte, msgID string, ack *jetstream.PubAck, retried bool, err error) {
	h := q.held.log
	if err != nil {
		h.stored(token, jobs, nil)
		h.mu.Lock()
		if len(h.unknown) >= maxUnknown {
			clear(h.unknown)
		}
		h.unknown[msgID] = struct{}{}
		h.mu.Unlock()
		return
	}
	if ack.Duplicate {
		h.mu.Lock()
		_, failed := h.unknown[msgID]
		delete(h.unknown, msgID)
		h.mu.Unlock()
		if !failed && !retried {
			h.stored(token, jobs, nil)
			return
		}
	}
	g := &heldGroup{seq: ack.Sequence, jobs: jobs, data: data}
	if !h.stored(token, jobs, g) {
		return // held already
	}
	// Never blocks: reserve keeps the jobs held, each group at least one,
	// within the channel's room.
	q.held.work <- g
}

// heldLoop calls fn, with timeout for its store calls, every third of
// the lease's time to live until the held path stops: the lease's
// renewal (leaseLoop) and the scan for stranded groups and dead
// replicas' subjects (scanLoop).
func (q *Queue) heldLoop(timeout time.Duration, fn func(context.Context)) {
	h := q.held
	defer h.loops.Done()
	t := time.NewTicker(h.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		q.storeCalls(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			fn(ctx)
		})
	}
}

// leaseLoop renews the lease every third of its time to live.
func (q *Queue) leaseLoop() { q.heldLoop(q.held.ttl/3, q.renew) }

// scanLoop retries stranded groups and takes over the subjects of
// replicas whose lease expired, every third of the lease's time to live.
func (q *Queue) scanLoop() {
	q.heldLoop(q.held.ttl, func(ctx context.Context) {
		q.retryStranded(ctx)
		q.takeOver(ctx, false)
	})
}

// renew renews the lease. A lease that expired meanwhile may have been
// claimed: the replica then stores no more groups on the held path (those
// it holds still run; a takeover may run them again: at least once).
func (q *Queue) renew(ctx context.Context) {
	h := q.held
	h.log.mu.Lock()
	lost := h.log.lost
	h.log.mu.Unlock()
	if lost {
		return
	}
	rev, err := h.leases.Update(ctx, h.log.id, []byte("alive"), h.rev)
	if err == nil {
		h.rev = rev
		return
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) { // 10071, or 10164 on a replicated bucket
		q.log.Warn("cannot renew the replica's lease", "err", err)
		return
	}
	// Expired: take it again unless another replica claimed it.
	if rev, err = h.leases.Create(ctx, h.log.id, []byte("alive")); err == nil {
		h.rev = rev
		q.log.Warn("the replica's lease had expired; taken again")
		return
	}
	q.log.Error("the replica's lease expired and was claimed by another replica: new callbacks' jobs go to the shared queue", "replica", h.log.id, "err", err)
	h.log.mu.Lock()
	h.log.lost = true
	h.log.mu.Unlock()
}

// purgeLoop removes finished groups from the held stream.
func (q *Queue) purgeLoop() {
	h := q.held
	defer h.loops.Done()
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.log.kick:
		case <-t.C:
		}
		q.storeCalls(q.purgeHeld)
	}
}

// purgeHeld purges this replica's finished groups below the lowest one
// still open.
func (q *Queue) purgeHeld() {
	h := q.held
	floor, ok := h.log.floor()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	if err := h.stream.Purge(ctx, jetstream.WithPurgeSubject(h.log.filter), jetstream.WithPurgeSequence(floor)); err != nil {
		q.log.Warn("cannot purge finished held jobs; they would run again after a crash", "err", err)
		return
	}
	h.log.mu.Lock()
	h.log.purged = max(h.log.purged, floor)
	h.log.mu.Unlock()
}

// processHeld runs a held group's jobs. A group that cannot finish here
// goes to the shared queue, unless the queue is stopping: Stop hands it
// over.
func (q *Queue) processHeld(g *heldGroup) {
	if q.isStopping() {
		return
	}
	v, _ := q.handle(&delivery{seq: g.seq | heldSeqBit, data: g.data, delivered: 1, held: true})
	if v == vAck {
		q.held.log.finish(g)
		return
	}
	if q.isStopping() {
		return
	}
	// Put back as the consumer's messages are: a release is a redelivery,
	// a wait for profiles is not.
	if err := q.demote(context.Background(), g, v == vRelease); err != nil {
		q.log.Error("cannot move held jobs to the shared queue; retried", "seq", g.seq, "err", err)
		q.held.log.mu.Lock()
		q.held.log.stranded = append(q.held.log.stranded, g)
		q.held.log.mu.Unlock()
	}
}

// demote stores a held group in the shared queue and finishes it here.
// A group that may have run in part is marked taken: its next delivery
// counts as a redelivery.
func (q *Queue) demote(ctx context.Context, g *heldGroup, taken bool) error {
	ctx, cancel := context.WithTimeout(ctx, handoffTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: q.names.batchPrefix + strconv.Itoa(g.jobs), Data: g.data}
	if taken {
		msg.Header = nats.Header{hdrTaken: []string{q.held.log.id}}
	}
	if _, err := q.publish(ctx, msg, "h:"+q.held.log.id+":"+strconv.FormatUint(g.seq, 10)); err != nil {
		return err
	}
	q.held.log.finish(g)
	return nil
}

func (q *Queue) retryStranded(ctx context.Context) {
	h := q.held.log
	h.mu.Lock()
	gs := h.stranded
	h.stranded = nil
	h.mu.Unlock()
	for i, g := range gs {
		if err := q.demote(ctx, g, true); err != nil {
			h.mu.Lock()
			h.stranded = append(h.stranded, gs[i:]...)
			h.mu.Unlock()
			return
		}
	}
}

// handOver, at Stop, once the workers are done: the groups not finished
// go to the shared queue, the replica's subject is purged and its lease
// given up. Groups it cannot hand over stay stored, for a takeover.
func (q *Queue) handOver() {
	h := q.held
	if h == nil {
		return
	}
	close(h.stop)
	h.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), handoffTimeout)
	defer cancel()
	var keep uint64
	h.log.mu.Lock()
	gs := mapValues(h.log.open) // the stranded ones among them
	h.log.mu.Unlock()
	slices.SortFunc(gs, func(a, b *heldGroup) int { return cmp.Compare(a.seq, b.seq) })
	for _, g := range gs {
		if keep == 0 {
			if err := q.demote(ctx, g, true); err != nil {
				q.log.Error("cannot hand held jobs over to the shared queue; another replica takes them over", "err", err)
				keep = g.seq
			}
		}
	}
	opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(h.log.filter)}
	if keep != 0 {
		opts = append(opts, jetstream.WithPurgeSequence(keep))
	}
	if err := h.stream.Purge(ctx, opts...); err != nil {
		q.log.Warn("cannot purge handed-over held jobs; they may run again", "err", err)
	}
	if err := h.leases.Delete(ctx, h.log.id); err != nil {
		q.log.Warn("cannot give up the replica's lease", "err", err)
	}
}

func mapValues(m map[uint64]*heldGroup) []*heldGroup {
	gs := make([]*heldGroup, 0, len(m))
	for _, g := range m {
		gs = append(gs, g)
	}
	return gs
}

// takeOver looks for the held subjects of replicas without a lease, and
// takes over each it claims first. all: every replica but this one is
// known dead (the embedded store at Open).
func (q *Queue) takeOver(ctx context.Context, all bool) {
	h := q.held
	info, err := h.stream.Info(ctx, jetstream.WithSubjectFilter(q.names.heldSubjects))
	if err != nil {
		q.log.Warn("cannot look for held jobs of dead replicas", "err", err)
		return
	}
	ids := map[string]bool{}
	for subj := range info.State.Subjects {
		id, _, ok := strings.Cut(strings.TrimPrefix(subj, q.names.heldPrefix), ".")
		if ok && id != h.log.id {
			ids[id] = true
		}
	}
	for id := range ids {
		// The claim: the key of a lease gone can be created by one replica
		// only. It expires like a lease, so a replica dying while it takes
		// over leaves the rest to the next.
		if !all {
			if _, err := h.leases.Create(ctx, id, []byte("taken over by "+h.log.id)); err != nil {
				continue // alive, claimed by another, or unknown
			}
		}
		if err := q.takeOverOne(ctx, id); err != nil {
			q.log.Error("taking over a dead replica's held jobs", "replica", id, "err", err)
		}
	}
}

// takeOverOne republishes the held messages of replica id to the shared
// queue, oldest first, then purges them. A republished message's Msg-Id
// is its held sequence: a takeover interrupted and done again within the
// duplicate window stores nothing twice.
func (q *Queue) takeOverOne(ctx context.Context, id string) error {
	h := q.held
	prefix := q.names.heldPrefix + id + "."
	filter := prefix + "*"
	seq, moved := uint64(1), 0
	for {
		raw, err := h.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: q.names.batchPrefix + strings.TrimPrefix(raw.Subject, prefix), Data: raw.Data, Header: nats.Header{}}
		msg.Header.Set(hdrTaken, id)
		if _, err := q.publish(ctx, msg, "h:"+id+":"+strconv.FormatUint(raw.Sequence, 10)); err != nil {
			return err
		}
		seq = raw.Sequence + 1
		moved++
	}
	if moved == 0 {
		return nil
	}
	if err := h.stream.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(seq)); err != nil {
		return err
	}
	q.log.Warn("took over the held jobs of a replica gone", "replica", id, "messages", moved)
	return nil
}

// heldStats adds the held jobs to s (stored, run from memory by a replica
// or waiting for a takeover; finished ones count until their purge) and
// returns how many messages hold them.
func (q *Queue) heldStats(ctx context.Context, s *Stats) (int, error) {
	if q.held == nil {
		return 0, nil
	}
	info, err := q.held.stream.Info(ctx, jetstream.WithSubjectFilter(q.names.heldSubjects))
	if err != nil {
		return 0, err
	}
	for subj, c := range info.State.Subjects {
		if i := strings.LastIndexByte(subj, '.'); i >= 0 {
			if k, err := strconv.Atoi(subj[i+1:]); err == nil {
				s.Jobs += k * int(c)
			}
		}
	}
	if info.State.Msgs > 0 {
		// The oldest held message: its group is running or waits for a
		// worker (or, finished, for its purge).
		if now := q.now(); now.After(info.State.FirstTime) {
			s.OldestWait = now.Sub(info.State.FirstTime)
		}
	}
	return int(info.State.Msgs), nil
}

// storeCalls runs f, which calls the JetStream API, unless the embedded
// store is faulted; a restart of JetStream (recoverStore) waits for it.
// nats-server's EnableJetStream must not run while an API request is
// being dispatched (a data race in the server: its export subjects are
// set while requests read them).
func (q *Queue) storeCalls(f func()) {
	q.apiMu.RLock()
	defer q.apiMu.RUnlock()
	if q.StoreError() != nil {
		return
	}
	f()
}
