// Package queue is friendflow's durable job queue, built on NATS JetStream.
//
// # Layout
//
// Three streams (five with the recording), one consumer and a bucket of leases, the same whether the server is embedded in
// the process (file storage under Config.DataDir) or an external cluster
// (Config.URL, replicated streams). Their names below are those of the
// default namespace, "friendflow"; Config.Namespace replaces that prefix in
// every stream, consumer, subject and bucket, so that deployments sharing a
// NATS account stay apart. Each stream and bucket records the SdkAppid
// that created it, and Open refuses a namespace created for another app:
//
//   - FRIENDFLOW_JOBS, a work-queue stream. Enqueue stores all of one
//     callback's jobs in ONE message on friendflow.jobs.cb.<n> (n = how many
//     jobs it holds): the jobs are stored together or not at all. Callbacks
//     enqueued while a publish is in flight share the next message (group
//     commit, whole callbacks only, Msg-Id "cb:<callbackID>" alone, with a
//     hash of every callback id for several), which
//     is what keeps the durable enqueue within its CPU budget (figures in
//     docs/performance.md); the workers run a message's jobs side by side. A job gets a message
//     of its own, on friendflow.jobs.one, only when it has to wait: a delay,
//     a retry after a failure, a replay from the dead letters.
//   - FRIENDFLOW_HELD, a stream no consumer reads: where Enqueue stores the groups
//     a replica runs from memory, on a subject of its own
//     (friendflow.held.<replica id>.<n>), purged in bulk as they finish;
//     friendflow_replicas holds the replicas' leases, and a replica whose
//     lease expired has its subject taken over into FRIENDFLOW_JOBS by
//     another (held.go). FRIENDFLOW_JOBS then keeps the groups that do not
//     run from memory (a replica over its memory budget, a stopping one,
//     a takeover's) and every message of its own.
//   - FRIENDFLOW_DEAD, a limits stream with one subject per dead job
//     (friendflow.dead.<base64url(job id)>, one message per subject): listing,
//     replaying and dropping by id are direct lookups.
//   - FRIENDFLOW_EVENTS and FRIENDFLOW_TRACE, limits streams of the
//     recorded events and of what became of their jobs, when
//     Config.RecordEvents is not 0 (events.go).
//   - friendflow-workers, the one durable pull consumer every replica shares
//     (a work-queue stream allows only one). MaxDeliver and MaxAckPending are
//     unlimited: attempts are counted in the job itself, because JetStream's
//     delivery count also counts redeliveries that ran nothing (due-time
//     waits, stops, failovers), and its BackOff applies to ack timeouts only.
//
// # Messages
//
// A job message is binary (format 2, see codec.go): a header and the job
// records, so a group is the header followed by its callbacks' records as
// Enqueue encoded them, and the committer only concatenates. Messages in the
// first release's JSON (format 1) are still read. Dead letters stay JSON:
// they are rare, and read by people (the dlq command, GET /dlq).
//
// # Delays
//
// A job's Due time is enforced with NakWithDelay, never with a sleeping
// goroutine: a message of its own that is not yet due carries its due time in
// the Friendflow-Due header, and the consumer's callback naks it with the
// remaining delay without taking a worker; the server redelivers it when it
// is due, and persists (and replicates) that redelivery time, so it survives
// a restart. Server-side message schedules were the alternative; they were
// not chosen because they fire up to a second early (whole-second @at), need
// nats-server ≥ 2.12 on an external cluster, and change the stream (rollups).
// The cost of NakWithDelay is that a waiting job holds an ack-pending slot on
// the consumer, and the server scans its pending set when timers fire: fine
// for tens of thousands of concurrently delayed jobs, not for millions.
//
// # Delivery
//
// At least once. A held group is finished, and purged with the next
// purge, on the same terms. A worker acks a callback's message only after every job in
// it has succeeded, been dead-lettered, or been re-enqueued in a message of
// its own (always published before the ack). A crash in between redelivers
// the message and its jobs run again; derived messages carry Msg-Ids made of
// the source message's stream sequence and the job id, so re-publishing them
// on redelivery is deduplicated by the server within the 2-minute window.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/internal/tracing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names in the JetStream account derive from Config.Namespace (names.go).
const (
	// hdrDue carries a job's due time (Unix nanoseconds) on a message of its
	// own that must wait, so the consumer can nak it without decoding it.
	hdrDue = "Friendflow-Due"
	// hdrErrors carries the errors of a job's earlier attempts (JSON, see
	// Job.Errors) on the message of its own a retry travels in. A header,
	// not a field of the job record: only retries carry it, the format of
	// job messages stays as it is, and a release that does not know it
	// runs the job all the same.
	hdrErrors = "Friendflow-Errors"
	// maxErrors and maxErrorLen bound a job's error history: the most
	// recent attempts, each error cut to its start.
	maxErrors   = 20
	maxErrorLen = 1024

	// ackWait is how long the server waits for an ack before redelivering.
	// Messages waiting for a worker and running jobs extend it (InProgress)
	// every ackWait/3, so it does not bound how long a job may run; it is
	// how long the messages of a crashed replica, or deliveries lost with a
	// crashed cluster node, wait before they are delivered again.
	ackWait = 15 * time.Second
	// jobsDupWindow is the jobs stream's Msg-Id window: publish-retry
	// idempotency only: the server keeps the window's ids in memory, so a
	// long window costs memory under load; long-term dedup is Once.
	// It covers an enqueue's retries (defaultEnqueueTimeout) and a
	// source message redelivered after ackWait re-publishing the jobs it
	// had handed off, with room to spare. The server keeps every id of
	// the window in memory, so the window bounds memory under load: after
	// 60 s of bench/load.sh (17 000 callbacks/s) peak resident memory was
	// 70 MiB with a 2-minute window and 60 MiB with this one.
	jobsDupWindow = 30 * time.Second
	// deadDupWindow: dead letters are few, so their window can be long.
	deadDupWindow = 2 * time.Minute
	// attemptTimeout bounds one publish or API call; retries continue
	// within the caller's context (a leader election takes a few seconds).
	attemptTimeout = 2 * time.Second
	// defaultEnqueueTimeout applies when Enqueue's context has no deadline.
	defaultEnqueueTimeout = 10 * time.Second
	// handoffTimeout bounds a worker's publishes (retry, split, dead letter).
	handoffTimeout = 15 * time.Second
	// interruptGrace is how long Stop waits for actions to return after
	// their context was cancelled at the stop deadline.
	interruptGrace = 2 * time.Second
)

// Defaults for zero Config fields. A zero Retry field takes
// actions.DefaultRetry's.
const (
	DefaultWorkers    = 4
	DefaultJobTimeout = 2 * time.Minute
	// DefaultDeadMaxAge and DefaultDeadMaxBytes bound the dead letters:
	// past either, the oldest are discarded (and counted, see
	// Stats.DeadDiscarded).
	DefaultDeadMaxAge   = 14 * 24 * time.Hour
	DefaultDeadMaxBytes = 256 << 20
	// DefaultOnceMaxBytes bounds each once bucket (one per once.for
	// window): a key is a fixed 64-byte hash with a short token, about
	// 150 bytes stored, so this holds some 400 000 keys; callers sending
	// ever new pairs cannot grow it further.
	DefaultOnceMaxBytes = 64 << 20
	defaultReplicas     = 1
	defaultOpenTimeout  = 30 * time.Second
)

// ErrStopped is returned by operations on a queue that is stopping or stopped.
var ErrStopped = errors.New("queue: stopped")

// Config configures a Queue. The zero value of every field but DataDir (or
// URL) is usable.
type Config struct {
	DataDir string // embedded store directory; used when URL is empty
	URL     string // external NATS cluster URLs, comma-separated; empty: embedded server
	// Auth authenticates to an external cluster (URL), and TLS secures
	// the connection; both unused by the embedded server.
	Auth Auth
	TLS  TLS
	// Namespace prefixes every stream, consumer, subject and bucket
	// [DefaultNamespace]; see CheckNamespace.
	Namespace string
	// SdkAppid is recorded in every stream and bucket the queue creates,
	// and Open fails with an *OwnerError when the namespace's streams
	// were created for another one. 0: neither recorded nor checked.
	SdkAppid int64
	// DeadMaxAge and DeadMaxBytes bound the dead-letter stream
	// [DefaultDeadMaxAge, DefaultDeadMaxBytes]; the oldest dead letters go
	// first (Stats.DeadDiscarded counts them). Open applies them to an
	// existing stream too.
	DeadMaxAge   time.Duration
	DeadMaxBytes int64
	// OnceMaxBytes bounds each once bucket [DefaultOnceMaxBytes]: past
	// it, the oldest keys are forgotten before their window ends (a
	// replay of their event could then run again), rather than every
	// callback of a rule with once failing until keys expire.
	// Stats.OnceBytes shows how full the buckets are.
	OnceMaxBytes int64
	// RecordEvents, when not 0, creates the streams of recorded events
	// (events.go), keeping that many events for RecordMaxAge
	// [DefaultRecordMaxAge].
	RecordEvents int
	RecordMaxAge time.Duration
	Listen       string // embedded server also listens on host:port (tests, debugging); empty: no TCP listener
	Replicas     int    // stream and bucket replicas [1]; more than 1 needs URL
	SyncAlways   bool   // embedded: fsync every write (power-loss safe, ~20× slower); default survives kill -9 only
	Workers      int    // worker pool size [4]
	// JobTimeout caps one run of one action [2m], so a hung action cannot
	// hold a worker forever; hitting it is a transient failure.
	JobTimeout time.Duration
	Registry   *actions.Registry // the action kinds; required by Run
	// Profiles renders the profile() templates of jobs when they run
	// (rules.Resolver); nil: such a job is a dead letter.
	Profiles Profiles
	Logger   *slog.Logger // nil: slog.Default()
	Hooks    Hooks
	// Tracer, when set, gives each job run a span linked to its callback's
	// and stores jobs' TraceParent (message format 3); nil: no tracing.
	Tracer *tracing.Tracer
	Now    func() time.Time // clock for due times and attempt times, safe for concurrent use (nil: time.Now)
	Rand   func() float64   // jitter source in [0, 1] (nil: math/rand/v2); calls are serialised

	// leaseTTL is how long a replica's lease on its held jobs outlives
	// its last renewal [defaultLeaseTTL]; shorter in tests.
	leaseTTL time.Duration
}

// Profiles resolves the profile() templates a job's parameters hold
// (actions.ProfilesParam marks them): rules.Resolver.
type Profiles interface {
	// Prefetch asks for the profiles a job will want, without waiting;
	// it returns 0 when they are cached, else about how long until they
	// will be.
	Prefetch(params map[string]any) (wait time.Duration)
	// Resolve returns the parameters rendered; its error is classified
	// like an action's.
	Resolve(ctx context.Context, params map[string]any, event json.RawMessage) (map[string]any, error)
}

// Hooks observe the queue, for metrics. Nil hooks are skipped. They are
// called from worker and request goroutines concurrently and must not block.
type Hooks struct {
	// Enqueued is called once per successful Enqueue; duplicate means the
	// server had already stored this callback (a retried publish).
	Enqueued func(callbackID string, jobs int, duplicate bool)
	// JobFinished is called after each run of an action. outcome is "done",
	// "retried" (a transient failure with attempts left) or "dead" (moved to
	// the dead letters). A job interrupted by Stop is not finished: it is
	// returned to the queue and no hook is called. A job its cancel_on
	// dropped is finished without a run: outcome "cancelled", err a
	// *Cancelled saying by what, took 0. A job its action skipped
	// (actions.Skip) is "skipped", err saying why.
	JobFinished func(job *Job, outcome string, err error, took time.Duration)
	// Redelivered is called for each job of a message delivered again after
	// an earlier delivery was never acknowledged (crash, ack timeout,
	// failover, stop): the job may run a second time.
	Redelivered func(job *Job, deliveries uint64)
	// Replayed is called for each dead letter an operator replayed, once
	// its job is queued again (it may have run already); at is when the
	// replay began.
	Replayed func(job *Job, at time.Time)
}

// Job outcomes reported to Hooks.JobFinished.
const (
	OutcomeDone    = "done"
	OutcomeRetried = "retried"
	OutcomeDead    = "dead"
	// OutcomeCancelled: an event of one of the job's Cancel.On commands for
	// its pair came after the job was made; the job was dropped unrun.
	OutcomeCancelled = "cancelled"
	// OutcomeSkipped: the action decided not to run (actions.Skip); err
	// says why. Neither retried nor dead-lettered.
	OutcomeSkipped = "skipped"
)

// Retry is a job's retry policy, the one rules carry; zero fields take
// actions.DefaultRetry's.
type Retry = actions.Retry

// Job is an actions.Job with its delivery state. In the queue, Attempt counts
// the attempts already made (0 when enqueued); the action's Do sees the
// number of the attempt it is running, starting at 1.
type Job struct {
	actions.Job
	Due          time.Time `json:"due,omitzero"` // not before (delay, backoff)
	Retry        Retry     `json:"retry,omitzero"`
	OnceKey      string    `json:"once_key,omitempty"` // informational: dedup was decided at match time
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	// Errors are the errors of the failed attempts, oldest first: the last
	// maxErrors of them, each cut to maxErrorLen bytes.
	Errors     []AttemptError `json:"errors,omitempty"`
	CallbackID string         `json:"callback_id,omitempty"`
	// TraceParent is the W3C traceparent of the callback's span when
	// tracing is on: the job's own span links to it.
	TraceParent string `json:"traceparent,omitempty"`
	// Cancel is the job's cancel_on; nil for most jobs, which then cost
	// nothing for it (a pointer keeps Job as small as it was).
	Cancel *Cancel `json:"cancel,omitempty"`
}

// Cancel is a job's cancel_on: the commands (On) whose events for the
// job's pair (its event's From_Account and To_Account, either direction),
// noted by MarkCancel after Created, drop the job before it runs.
type Cancel struct {
	On []string `json:"on"`
	// Created is when the callback that made the job was handled: a
	// cancelling event after it drops the job, one before it does not.
	Created time.Time `json:"created"`
}

// AttemptError is one failed attempt of a job.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// Queue is a durable job queue with a worker pool. Its methods are safe for
// concurrent use.
type Queue struct {
	cfg      Config
	ownClock bool // Config.Now was given, not defaulted to time.Now
	log      *slog.Logger
	names    names
	ns       *server.Server // embedded server; nil with Config.URL
	nc       *nats.Conn
	js       jetstream.JetStream
	jobs     jetstream.Stream
	dead     jetstream.Stream
	cons     jetstream.Consumer
	events   jetstream.Stream    // recorded events; nil when recording is off
	recJS    jetstream.JetStream // recorded events' async publishes, apart from the jobs'

	onceMu      sync.Mutex // guards onceBuckets
	onceBuckets map[time.Duration]*onceBucket
	onceCreate  chan struct{}              // held while creating a bucket; waited for under the caller's context
	cancelB     atomic.Pointer[onceBucket] // cancel_on's markers, once created (cancel.go)

	deadWatch deadWatch
	parks     parks // messages put back to wait for their profiles

	randMu sync.Mutex // math/rand/v2's top-level functions are safe; a Config.Rand may not be

	store atomic.Pointer[storeState] // whether the store can write (health.go)

	stopping     chan struct{} // closed when the workers' intake must stop (Stop, or Run's context)
	stoppingOnce sync.Once
	closed       atomic.Bool     // Stop was called: no more enqueues
	jobCtx       context.Context // actions run under it; cancelled at Stop's deadline
	cancelJobs   context.CancelFunc
	started      atomic.Bool
	runDone      chan struct{} // closed when Run has returned
	stopOnce     sync.Once
	stopErr      error

	slots      chan struct{} // one per worker: actions running at once, over all messages
	commits    chan *commit  // Enqueue hands its callback to a committer
	encodeBufs sync.Pool     // *[]byte for Enqueue's encodings
	commitStop chan struct{} // closed by Stop: committers finish and exit
	committers sync.WaitGroup

	held  *held        // the held path (held.go)
	apiMu sync.RWMutex // the held path's API calls hold it to read; recoverStore to write
	fast  atomic.Bool  // workers take held groups: new groups may take the held path
}

// Open starts the embedded server when cfg.URL is empty, connects, and
// creates or updates the streams and the consumer. It retries while the
// server or cluster is not ready yet (a cluster electing its leaders), until
// ctx is done or 30 s have passed.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	ownClock := cfg.Now != nil
	cfg.setDefaults()
	if err := CheckNamespace(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	base := cfg.Logger
	if base == nil {
		base = slog.Default()
	}
	// Each component names itself once, on the base logger: slog's With
	// appends, so a component logger derived from another would carry
	// two component keys.
	log := base.With("component", "queue")
	if err := cfg.checkServer(log); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultOpenTimeout)
		defer cancel()
	}

	q := &Queue{
		cfg:         cfg,
		names:       newNames(cfg.Namespace),
		ownClock:    ownClock,
		onceCreate:  make(chan struct{}, 1),
		log:         log,
		onceBuckets: make(map[time.Duration]*onceBucket),
		stopping:    make(chan struct{}),
		runDone:     make(chan struct{}),
		commits:     make(chan *commit),
		slots:       make(chan struct{}, cfg.Workers),
		commitStop:  make(chan struct{}),
	}
	q.jobCtx, q.cancelJobs = context.WithCancel(actions.WithLedger(context.Background(), ledger{q}))
	q.store.Store(newStoreState())

	var err error
	if cfg.URL == "" {
		q.ns, err = startEmbedded(cfg, base)
		if err != nil {
			return nil, err
		}
		q.nc, err = nats.Connect("", nats.InProcessServer(q.ns), nats.Name("friendflow"))
	} else {
		q.nc, err = connect(cfg, log)
	}
	if err != nil {
		q.shutdownServer()
		return nil, fmt.Errorf("queue: connect: %w", err)
	}
	q.js, err = jetstream.New(q.nc)
	if err == nil {
		q.recJS, err = jetstream.New(q.nc, jetstream.WithPublishAsyncMaxPending(4*MaxEventsBatch))
	}
	if err == nil {
		err = retrying(ctx, log, "set up streams", q.setup)
	}
	if err == nil {
		err = q.setupHeld(ctx)
	}
	if err != nil {
		q.nc.Close()
		q.shutdownServer()
		return nil, err
	}
	n := embeddedCommitters
	if q.ns == nil {
		n = externalCommitters
	}
	for range n {
		q.committers.Add(1)
		go q.commitLoop()
	}
	if q.ns != nil {
		q.committers.Add(1)
		go q.watchStore()
	}
	return q, nil
}

// setDefaults fills in the zero fields of cfg that have a default.
func (cfg *Config) setDefaults() {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = defaultReplicas
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.DeadMaxAge <= 0 {
		cfg.DeadMaxAge = DefaultDeadMaxAge
	}
	if cfg.DeadMaxBytes <= 0 {
		cfg.DeadMaxBytes = DefaultDeadMaxBytes
	}
	if cfg.OnceMaxBytes <= 0 {
		cfg.OnceMaxBytes = DefaultOnceMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
}

// checkServer refuses settings of the other kind of server: the embedded
// one (no URL) or an external cluster.
func (cfg *Config) checkServer(log *slog.Logger) error {
	if cfg.URL != "" {
		if cfg.SyncAlways {
			log.Warn("sync-always is a setting of the external NATS servers (jetstream { sync_interval: always }); ignored here")
		}
		if cfg.Listen != "" {
			return errors.New("queue: Listen applies to the embedded server only, not with URL")
		}
		return nil
	}
	if cfg.DataDir == "" {
		return errors.New("queue: DataDir is required for the embedded server")
	}
	if cfg.Replicas > 1 {
		return fmt.Errorf("queue: %d replicas need an external cluster (URL)", cfg.Replicas)
	}
	if cfg.Auth != (Auth{}) || cfg.TLS != (TLS{}) {
		return errors.New("queue: NATS credentials and TLS apply to an external cluster (URL) only")
	}
	return nil
}

// setup creates or updates the streams and the consumer. It is idempotent,
// so every replica runs it at start; it also applies changed limits to
// existing streams.
func (q *Queue) setup(ctx context.Context) error {
	n := q.names
	var err error
	q.jobs, _, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        n.jobsStream,
		Description: "friendflow jobs: one message per group of accepted callbacks, one per waiting job",
		Subjects:    []string{n.jobsSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    q.cfg.Replicas,
		Duplicates:  jobsDupWindow,
		MaxMsgs:     -1,
		MaxBytes:    -1,
	})
	if err != nil {
		return err
	}
	var before jetstream.StreamState
	q.dead, before, err = q.ensureStream(ctx, jetstream.StreamConfig{
		Name:              n.deadStream,
		Description:       "friendflow dead letters: one subject per job id",
		Subjects:          []string{n.deadSubjects},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		Replicas:          q.cfg.Replicas,
		Duplicates:        min(deadDupWindow, q.cfg.DeadMaxAge), // JetStream: never above MaxAge
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxAge:            q.cfg.DeadMaxAge,
		MaxBytes:          q.cfg.DeadMaxBytes,
	})
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == 10047 {
		// JetStream reserves a stream's MaxBytes up front, against the
		// store's room (embedded: 75% of the free space under DataDir).
		return fmt.Errorf("queue: the dead letters' byte limit (%d MiB) does not fit in the store's free space: "+
			"lower the dead-letter limit or give the store more room: %w", q.cfg.DeadMaxBytes>>20, err)
	}
	if err != nil {
		return err
	}
	// The discard count starts before the update: lowered limits discard
	// at once, and those count too.
	q.deadWatch.observe(before)
	q.cons, err = q.jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       n.consumer,
		Description:   "friendflow workers, shared by every replica",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("queue: consumer %s: %w", n.consumer, err)
	}
	return q.setupEvents(ctx)
}

// JetStream is the queue's JetStream context, for the state kept beside
// the jobs (engine/state: counters, lists), under the same namespace and
// connection. It is usable until Stop.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Namespace is the namespace every name of the queue derives from.
func (q *Queue) Namespace() string { return q.cfg.Namespace }

// Replicas is the replica count of the queue's streams and buckets.
func (q *Queue) Replicas() int { return q.cfg.Replicas }

// Ready returns nil when the store is usable: connected, and the jobs
// stream answers (in a cluster: it has a leader).
func (q *Queue) Ready() error {
	if q.closed.Load() {
		return ErrStopped
	}
	if err := q.StoreError(); err != nil {
		return err
	}
	if !q.nc.IsConnected() {
		return fmt.Errorf("queue: not connected to NATS (%s)", q.nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	if _, err := q.jobs.Info(ctx); err != nil {
		return fmt.Errorf("queue: jobs stream: %w", err)
	}
	return nil
}

// Stop stops the queue gracefully: no more messages are fetched; running
// jobs get until timeout to finish, then their context is cancelled and they
// are returned to the queue, as are messages fetched but not started; the
// connection is flushed and closed, and the embedded server is shut down
// cleanly. Returned messages are redelivered at once to other replicas, or
// after the next Open. Stop may be called more than once.
func (q *Queue) Stop(timeout time.Duration) error {
	q.stopOnce.Do(func() { q.stopErr = q.stop(timeout) })
	return q.stopErr
}

func (q *Queue) stop(timeout time.Duration) error {
	q.closed.Store(true)
	close(q.commitStop)
	q.committers.Wait()
	q.beginStop()
	var err error
	if q.started.Load() {
		t := time.NewTimer(timeout)
		select {
		case <-q.runDone:
		case <-t.C:
			q.log.Warn("jobs still running at the stop deadline: interrupting them", "timeout", timeout.String())
			q.cancelJobs()
			select {
			case <-q.runDone:
			case <-time.After(interruptGrace):
				err = errors.New("queue: actions ignored cancellation; their messages will be redelivered after the ack wait")
				q.log.Error(err.Error())
			}
		}
		t.Stop()
	}
	q.handOver()
	q.cancelJobs()
	if ferr := q.nc.FlushTimeout(time.Second); ferr != nil && err == nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = fmt.Errorf("queue: flush: %w", ferr)
	}
	q.nc.Close()
	q.shutdownServer()
	return err
}

// beginStop stops intake. Safe to call more than once.
func (q *Queue) beginStop() {
	q.stoppingOnce.Do(func() { close(q.stopping) })
}

func (q *Queue) isStopping() bool {
	select {
	case <-q.stopping:
		return true
	default:
		return false
	}
}

func (q *Queue) shutdownServer() {
	if q.ns != nil {
		q.ns.Shutdown()
		q.ns.WaitForShutdown()
	}
}

func (q *Queue) now() time.Time { return q.cfg.Now() }

func (q *Queue) rand() float64 {
	q.randMu.Lock()
	defer q.randMu.Unlock()
	r := q.cfg.Rand()
	return min(max(r, 0), 1)
}
