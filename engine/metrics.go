package engine

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// Metrics are friendflow's Prometheus metrics, on a registry of their own
// (no global state). No label takes unbounded values: commands outside the
// six are "other", rules are the operator's own (bounded) names, and
// accounts never become labels.
type Metrics struct {
	Registry *prometheus.Registry

	Callbacks        *prometheus.CounterVec   // command, result, reason
	CallbackDuration *prometheus.HistogramVec // command
	Events           *prometheus.CounterVec   // command
	RuleErrors       *prometheus.CounterVec   // rule
	OnceSkips        *prometheus.CounterVec   // rule
	CancelMarks      *prometheus.CounterVec   // command
	Decisions        *prometheus.CounterVec   // command, decision
	DecisionDuration prometheus.Histogram
	UnstoredJobs     *prometheus.CounterVec   // command
	Unsigned         prometheus.Counter       // callbacks accepted without a Sign check
	AdminAuthFailed  prometheus.Counter       // wrong admin tokens presented
	RecordDropped    prometheus.Counter       // recorded events and job updates not stored
	LogsSuppressed   *prometheus.CounterVec   // line
	Jobs             *prometheus.CounterVec   // action, outcome
	Redelivered      *prometheus.CounterVec   // action
	ActionDuration   *prometheus.HistogramVec // action
	IMRequests       *prometheus.CounterVec   // path, result
	ProfileLookups   *prometheus.CounterVec   // result: hit, miss
	Reloads          *prometheus.CounterVec   // result
	ReloadSuccess    prometheus.Gauge         // 1 when the last reload attempt succeeded
	LastReload       prometheus.Gauge
	ActiveRules      prometheus.Gauge
	RulesInfo        *prometheus.GaugeVec // hash

	// State operations (statemetrics.go).
	StateOps       *prometheus.CounterVec   // kind, op, result
	StateDuration  *prometheus.HistogramVec // kind, op
	StateConflicts *prometheus.CounterVec   // kind

	mu       sync.Mutex
	lastHash string
	own      []prometheus.Collector

	// Per-rule match counts live outside client_golang so that non-matches
	// can be derived at scrape time from the events of the rule's commands:
	// counting every non-match on the hot path would cost a counter
	// increment per rule per event, and the index skips most rules anyway.
	events [imevent.NumCommands]atomic.Uint64 // by imevent.CommandIndex
	rules  atomic.Pointer[map[string]*ruleCounts]

	// The children every accepted callback counts, by
	// imevent.CommandIndex, made on first use (nil until then): a
	// vector's WithLabelValues hashes the labels and looks them up under
	// a lock, three times per callback, together some 300 ns.
	okCallbacks [imevent.NumCommands]atomic.Pointer[prometheus.Counter]
	okDurations [imevent.NumCommands]atomic.Pointer[prometheus.Observer]
	eventsOf    [imevent.NumCommands]atomic.Pointer[prometheus.Counter]
}

// child returns the child in *p, made by newChild on first use. Two
// callbacks may both make it: a vector returns the same child for the
// same labels, so either is kept.
func child[T any](p *atomic.Pointer[T], newChild func() T) T {
	if c := p.Load(); c != nil {
		return *c
	}
	c := newChild()
	p.Store(&c)
	return c
}

// ruleCounts is one rule's matches, and the event counts of its commands
// when it was loaded (its non-matches start there).
type ruleCounts struct {
	on      []int
	base    []uint64
	matches atomic.Uint64
}

// CountEvents records n events of command cmd.
func (m *Metrics) CountEvents(cmd string, n int) {
	i, ok := imevent.CommandIndex(cmd)
	if !ok {
		m.Events.WithLabelValues(cmd).Add(float64(n))
		return
	}
	child(&m.eventsOf[i], func() prometheus.Counter { return m.Events.WithLabelValues(cmd) }).Add(float64(n))
	m.events[i].Add(uint64(n))
}

// CountMatch records that rule matched an event.
func (m *Metrics) CountMatch(rule string) {
	if rs := m.rules.Load(); rs != nil {
		if c := (*rs)[rule]; c != nil {
			c.matches.Add(1)
		}
	}
}

// trackRules starts counting the rules of a newly loaded set; rules that
// kept their name and commands keep their counts.
func (m *Metrics) trackRules(infos []rules.RuleInfo) {
	old := m.rules.Load()
	next := make(map[string]*ruleCounts, len(infos))
	for _, ri := range infos {
		on := make([]int, 0, len(ri.On))
		for _, c := range ri.On {
			if i, ok := imevent.CommandIndex(c); ok {
				on = append(on, i)
			}
		}
		if old != nil {
			if c := (*old)[ri.Name]; c != nil && slices.Equal(c.on, on) {
				next[ri.Name] = c
				continue
			}
		}
		c := &ruleCounts{on: on, base: make([]uint64, len(on))}
		for j, i := range on {
			c.base[j] = m.events[i].Load()
		}
		next[ri.Name] = c
	}
	m.rules.Store(&next)
}

var (
	ruleMatchesDesc = prometheus.NewDesc("friendflow_rule_matches_total",
		"Events a rule matched (shadow rules included), since it was loaded.", []string{"rule"}, nil)
	ruleNonMatchesDesc = prometheus.NewDesc("friendflow_rule_nonmatches_total",
		"Events of a rule's commands that it did not match (errors included), since it was loaded.", []string{"rule"}, nil)
)

type ruleCollector struct{ m *Metrics }

func (c *ruleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ruleMatchesDesc
	ch <- ruleNonMatchesDesc
}

func (c *ruleCollector) Collect(ch chan<- prometheus.Metric) {
	rs := c.m.rules.Load()
	if rs == nil {
		return
	}
	for name, rc := range *rs {
		matches := rc.matches.Load()
		var seen uint64
		for j, i := range rc.on {
			seen += c.m.events[i].Load() - rc.base[j]
		}
		// Counted apart, the two can pass each other for an instant.
		non := float64(0)
		if seen > matches {
			non = float64(seen - matches)
		}
		ch <- prometheus.MustNewConstMetric(ruleMatchesDesc, prometheus.CounterValue, float64(matches), name)
		ch <- prometheus.MustNewConstMetric(ruleNonMatchesDesc, prometheus.CounterValue, non, name)
	}
}

// NewMetrics registers every metric, plus Go runtime and process metrics.
func NewMetrics(version, commit string) *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg}
	m.Callbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_callbacks_total",
		Help: "Callbacks received, by command (one of the six Sns commands or other), result (ok, rejected, ignored, failed) and rejection reason.",
	}, []string{"command", "result", "reason"})
	m.CallbackDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "friendflow_callback_duration_seconds",
		Help:    "Time from receiving a callback to its reply, including durable enqueue.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
	}, []string{"command"})
	m.Events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_events_total",
		Help: "Events decoded from accepted callbacks (one per pair or item), by command.",
	}, []string{"command"})
	m.RuleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_rule_errors_total",
		Help: "Runtime errors evaluating a rule (counted as no match).",
	}, []string{"rule"})
	m.OnceSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_once_skips_total",
		Help: "Matches whose actions were skipped because their once key was seen within its window.",
	}, []string{"rule"})
	m.CancelMarks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_cancel_markers_total",
		Help: "Pairs noted for cancel_on, by command: an event of a command some rule's cancel_on lists drops that pair's pending actions; the drops are friendflow_jobs_total{outcome=\"cancelled\"}.",
	}, []string{"command"})
	m.Decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_decisions_total",
		Help: "Per-target decisions of Prev callbacks: allow, deny, fail_open (timeout or error, allowed) or fail_closed.",
	}, []string{"command", "decision"})
	m.DecisionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "friendflow_decision_duration_seconds",
		Help:    "Time to decide all targets of a Prev callback.",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .1, .5},
	})
	m.UnstoredJobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_prev_jobs_unstored_total",
		Help: "Jobs of Prev callbacks that could not be stored: the decisions were still sent, these actions never run.",
	}, []string{"command"})
	m.AdminAuthFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "friendflow_admin_auth_failures_total",
		Help: "Wrong admin tokens presented (bearer token, console cookie or sign-in form); each client is then slowed down.",
	})
	m.RecordDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "friendflow_record_dropped_total",
		Help: "Recorded events and job updates not stored: the recording's buffer was full (the store is slower than the traffic) or the store refused them. Replies never wait for the recording.",
	})
	m.Unsigned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "friendflow_callbacks_unsigned_total",
		Help: "Callbacks accepted without a Sign check (no --callback-token): anyone reaching the listener can send them.",
	})
	m.LogsSuppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_log_lines_suppressed_total",
		Help: "Log lines left out by rate limiting, by line (callback_rejected, engine: the per-event lines of the engine, admin_auth).",
	}, []string{"line"})
	m.Jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_jobs_total",
		Help: "Job attempts finished, by action and outcome (done, retried, dead, cancelled: dropped unrun by its cancel_on, or skipped: the action decided not to run).",
	}, []string{"action", "outcome"})
	m.Redelivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_jobs_redelivered_total",
		Help: "Jobs delivered again after an unacknowledged delivery (crash, failover, stop): they may run twice.",
	}, []string{"action"})
	m.ActionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "friendflow_action_duration_seconds",
		Help:    "Time one action attempt took.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	}, []string{"action"})
	m.ProfileLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_profile_lookups_total",
		Help: "IM profiles for profile(), by result: hit (a job found it cached) or miss (read with portrait_get because it was not).",
	}, []string{"result"})
	m.IMRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_im_requests_total",
		Help: "Requests to the IM REST API, by path and result (ok, rate_limited, api_error, http_error, failed).",
	}, []string{"path", "result"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_reloads_total",
		Help: "Rule reload attempts by result (success, failure).",
	}, []string{"result"})
	// Named after Prometheus's own prometheus_config_last_reload_successful
	// and ..._success_timestamp_seconds, so alerts written for one read the
	// same for the other.
	m.ReloadSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "friendflow_rules_last_reload_success",
		Help: "1 when the last rule reload attempt succeeded, 0 when it failed (the last good rules keep serving) or none has succeeded yet.",
	})
	m.LastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "friendflow_rules_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful rule load.",
	})
	m.ActiveRules = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "friendflow_active_rules",
		Help: "Rules in the active rule set.",
	})
	m.RulesInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "friendflow_rules_info",
		Help: "Always 1; the hash label is the content hash of the active rule set.",
	}, []string{"hash"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "friendflow_build_info",
		Help:        "Always 1; labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.newStateMetrics()
	m.own = []prometheus.Collector{m.StateOps, m.StateDuration, m.StateConflicts, m.Callbacks, m.CallbackDuration, m.Events, &ruleCollector{m},
		m.RuleErrors, m.OnceSkips, m.CancelMarks, m.Decisions, m.DecisionDuration, m.UnstoredJobs, m.Unsigned, m.AdminAuthFailed, m.RecordDropped, m.LogsSuppressed, m.Jobs, m.Redelivered, m.ActionDuration, m.IMRequests, m.ProfileLookups, m.Reloads, m.ReloadSuccess, m.LastReload,
		m.ActiveRules, m.RulesInfo, build}
	for _, c := range m.own {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Collectors returns friendflow's own collectors (docs and tests list them).
func (m *Metrics) Collectors() []prometheus.Collector {
	return m.own
}

// ObserveCallback is the imcallback.Receiver's Observe hook.
func (m *Metrics) ObserveCallback(command, result, reason string, took time.Duration) {
	i, ok := imevent.CommandIndex(command)
	if !ok || result != imcallback.ResultOK || reason != "" {
		m.Callbacks.WithLabelValues(command, result, reason).Inc()
		if result == imcallback.ResultOK {
			m.CallbackDuration.WithLabelValues(command).Observe(took.Seconds())
		}
		return
	}
	child(&m.okCallbacks[i], func() prometheus.Counter { return m.Callbacks.WithLabelValues(command, result, "") }).Inc()
	child(&m.okDurations[i], func() prometheus.Observer { return m.CallbackDuration.WithLabelValues(command) }).Observe(took.Seconds())
}

// ObserveIM is the IM client's Observe hook.
func (m *Metrics) ObserveIM(path, result string) {
	m.IMRequests.WithLabelValues(path, result).Inc()
}

// ObserveProfile counts one profile a job found in the cache (hit), or one
// read from IM because it was not (miss).
func (m *Metrics) ObserveProfile(hit bool) {
	if hit {
		m.ProfileLookups.WithLabelValues("hit").Inc()
	} else {
		m.ProfileLookups.WithLabelValues("miss").Inc()
	}
}

// RulesLoaded records a successful load of set.
func (m *Metrics) RulesLoaded(set *rules.Set) {
	n, hash := set.Len(), set.Hash()
	m.trackRules(set.Rules())
	m.Reloads.WithLabelValues("success").Inc()
	m.ReloadSuccess.Set(1)
	m.LastReload.SetToCurrentTime()
	m.ActiveRules.Set(float64(n))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastHash != hash {
		if m.lastHash != "" {
			m.RulesInfo.DeleteLabelValues(m.lastHash)
		}
		m.RulesInfo.WithLabelValues(hash).Set(1)
		m.lastHash = hash
	}
}

// QueueHooks returns the queue's hooks feeding the job metrics.
func (m *Metrics) QueueHooks() queue.Hooks {
	return queue.Hooks{
		JobFinished: func(job *queue.Job, outcome string, _ error, took time.Duration) {
			m.Jobs.WithLabelValues(job.Action, outcome).Inc()
			if outcome != queue.OutcomeCancelled { // never ran
				m.ActionDuration.WithLabelValues(job.Action).Observe(took.Seconds())
			}
		},
		Redelivered: func(job *queue.Job, _ uint64) {
			m.Redelivered.WithLabelValues(job.Action).Inc()
		},
	}
}

// WatchQueue exports the queue's depth, backlog age, dead letters and
// dead letters discarded by the limits, read once per scrape.
func (m *Metrics) WatchQueue(stats func(context.Context) (queue.Stats, error)) {
	c := &queueCollector{stats: stats}
	m.own = append(m.own, c)
	m.Registry.MustRegister(c)
}

// WatchStore exports whether the store can write, read once per scrape
// from storeErr (nil: it can).
func (m *Metrics) WatchStore(storeErr func() error) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "friendflow_store_writable",
		Help: "1 while the queue's store can write; 0 after a write failed (a full disk), until it recovers by itself. The log and /readyz say why.",
	}, func() float64 {
		if storeErr() != nil {
			return 0
		}
		return 1
	})
	m.own = append(m.own, g)
	m.Registry.MustRegister(g)
}

var (
	queueJobsDesc = prometheus.NewDesc("friendflow_queue_jobs",
		"Jobs stored and not finished: waiting, delayed, retrying or running.", nil, nil)
	queueInFlightDesc = prometheus.NewDesc("friendflow_queue_in_flight_messages",
		"Queue messages delivered and not yet acknowledged (running, buffered, or waiting for their due time).", nil, nil)
	queueOldestDesc = prometheus.NewDesc("friendflow_queue_oldest_wait_seconds",
		"How long the oldest due message no worker has taken yet has waited; 0 while workers keep up.", nil, nil)
	deadLettersDesc = prometheus.NewDesc("friendflow_dead_letters",
		"Jobs in the dead-letter stream, waiting to be replayed or dropped.", nil, nil)
	deadDiscardedDesc = prometheus.NewDesc("friendflow_dead_letters_discarded_total",
		"Dead letters the dead-letter stream's limits (--dlq-max-age, --dlq-max-bytes) discarded since this process started.", nil, nil)
	onceKeysDesc = prometheus.NewDesc("friendflow_once_keys",
		"Once keys stored (in the once.for windows this process has used).", nil, nil)
	onceBytesDesc = prometheus.NewDesc("friendflow_once_bytes",
		"Bytes of the once keys stored; each once.for window holds at most 64 MiB, past which its oldest keys are forgotten early.", nil, nil)
	queueUpDesc = prometheus.NewDesc("friendflow_queue_up",
		"1 when the queue answered the last scrape's stats request.", nil, nil)
)

type queueCollector struct {
	stats func(context.Context) (queue.Stats, error)
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueJobsDesc, queueInFlightDesc, queueOldestDesc, deadLettersDesc, deadDiscardedDesc, onceKeysDesc, onceBytesDesc, queueUpDesc} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(queueJobsDesc, prometheus.GaugeValue, float64(s.Jobs))
	ch <- prometheus.MustNewConstMetric(queueInFlightDesc, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, s.OldestWait.Seconds())
	ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(s.DeadLetters))
	ch <- prometheus.MustNewConstMetric(deadDiscardedDesc, prometheus.CounterValue, float64(s.DeadDiscarded))
	ch <- prometheus.MustNewConstMetric(onceKeysDesc, prometheus.GaugeValue, float64(s.OnceKeys))
	ch <- prometheus.MustNewConstMetric(onceBytesDesc, prometheus.GaugeValue, float64(s.OnceBytes))
}

// ReloadFailed records a failed reload.
func (m *Metrics) ReloadFailed() {
	m.Reloads.WithLabelValues("failure").Inc()
	m.ReloadSuccess.Set(0)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
