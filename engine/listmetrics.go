package engine

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendflow/friendflow/engine/state"
)

// WatchLists exports the lists' sizes, read once per scrape from summary,
// and returns the function that counts the members each change wrote
// (state.ListsConfig.Changed). The list label takes the operator's list
// names, which the admin API limits to the declared ones.
func (m *Metrics) WatchLists(summary func() []state.Summary) (changed func(list, op string, n int)) {
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "friendflow_list_changes_total",
		Help: "Members written to the operator-managed lists through this replica, by list and operation (add, remove, replace).",
	}, []string{"list", "op"})
	c := &listCollector{summary: summary}
	m.own = append(m.own, changes, c)
	m.Registry.MustRegister(changes, c)
	return func(list, op string, n int) { changes.WithLabelValues(list, op).Add(float64(n)) }
}

var (
	listMembersDesc = prometheus.NewDesc("friendflow_list_members",
		"Members of each operator-managed list, as this replica holds them.", []string{"list"}, nil)
	listBytesDesc = prometheus.NewDesc("friendflow_list_memory_bytes",
		"Memory this replica holds for each list's members (hash sets, an import under way included).", []string{"list"}, nil)
)

type listCollector struct{ summary func() []state.Summary }

func (c *listCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- listMembersDesc
	ch <- listBytesDesc
}

func (c *listCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.summary() {
		ch <- prometheus.MustNewConstMetric(listMembersDesc, prometheus.GaugeValue, float64(s.Members), s.Name)
		ch <- prometheus.MustNewConstMetric(listBytesDesc, prometheus.GaugeValue, float64(s.Bytes), s.Name)
	}
}
