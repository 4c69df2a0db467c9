package engine

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// newStateMetrics makes the metrics of the rules' state (engine/state):
// operations by kind of state, operation and result, their latency, and
// the compare-and-set conflicts retried.
func (m *Metrics) newStateMetrics() {
	m.StateOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_state_operations_total",
		Help: "Operations on the rules' state in JetStream, by kind (counter), op (add: count an event, get: read a count) and result (ok, error).",
	}, []string{"kind", "op", "result"})
	m.StateDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "friendflow_state_operation_duration_seconds",
		Help:    "Time one operation on the rules' state took, retries after write conflicts included, by kind and op.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5},
	}, []string{"kind", "op"})
	m.StateConflicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_state_conflicts_total",
		Help: "Compare-and-set conflicts on the rules' state (another replica or request wrote the key first), each retried, by kind.",
	}, []string{"kind"})
}

// ObserveCounter is engine/state's Counters.Observe hook.
func (m *Metrics) ObserveCounter(op string, took time.Duration, conflicts int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.StateOps.WithLabelValues("counter", op, result).Inc()
	m.StateDuration.WithLabelValues("counter", op).Observe(took.Seconds())
	if conflicts > 0 {
		m.StateConflicts.WithLabelValues("counter").Add(float64(conflicts))
	}
}
