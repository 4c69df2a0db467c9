package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

const kubeDir = "../../examples/kubernetes"

// The monitoring kit's documents, decoded strictly: a field that is not
// here is a typo (or a field this test must learn).
type (
	objectMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	metricsService struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
		Spec       struct {
			ClusterIP string            `yaml:"clusterIP"`
			Selector  map[string]string `yaml:"selector"`
			Ports     []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	serviceMonitor struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
		Spec       struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port     string `yaml:"port"`
				Path     string `yaml:"path"`
				Interval string `yaml:"interval"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	prometheusRule struct {
		APIVersion string     `yaml:"apiVersion"`
		Kind       string     `yaml:"kind"`
		Metadata   objectMeta `yaml:"metadata"`
		Spec       struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Expr        string            `yaml:"expr"`
					For         string            `yaml:"for"`
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	dashboard struct {
		Title         string   `json:"title"`
		UID           string   `json:"uid"`
		Description   string   `json:"description"`
		SchemaVersion int      `json:"schemaVersion"`
		Version       int      `json:"version"`
		Editable      bool     `json:"editable"`
		Tags          []string `json:"tags"`
		Timezone      string   `json:"timezone"`
		Refresh       string   `json:"refresh"`
		Time          struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"time"`
		Templating struct {
			List []struct {
				Name       string         `json:"name"`
				Type       string         `json:"type"`
				Label      string         `json:"label"`
				Datasource map[string]any `json:"datasource"`
				Query      any            `json:"query"`
				IncludeAll bool           `json:"includeAll"`
				Multi      bool           `json:"multi"`
				Current    map[string]any `json:"current"`
				Refresh    int            `json:"refresh"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []any `json:"list"`
		} `json:"annotations"`
		Panels []struct {
			ID          int            `json:"id"`
			Type        string         `json:"type"`
			Title       string         `json:"title"`
			Description string         `json:"description"`
			Datasource  map[string]any `json:"datasource"`
			GridPos     map[string]int `json:"gridPos"`
			Targets     []struct {
				RefID        string         `json:"refId"`
				Expr         string         `json:"expr"`
				LegendFormat string         `json:"legendFormat"`
				Datasource   map[string]any `json:"datasource"`
			} `json:"targets"`
			FieldConfig map[string]any `json:"fieldConfig"`
			Options     map[string]any `json:"options"`
		} `json:"panels"`
	}
)

// decodeStrict decodes one YAML document into v, refusing unknown fields.
func decodeStrict(doc []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// exercisedFamilies returns the metric families of friendflow's registry
// after every metric has been given a sample (vectors without one do not
// gather), by name.
func exercisedFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	m := engine.NewMetrics("test", "test")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - name: r\n    actions:\n      - log: { message: m }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: newRegistry(nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	m.RulesLoaded(set)
	m.ReloadFailed()
	m.ObserveCallback(imevent.CmdFriendAdd, imcallback.ResultOK, "", time.Millisecond)
	m.ObserveProfile(true)
	m.CountEvents(imevent.CmdFriendAdd, 1)
	m.CountMatch("r")
	m.RuleErrors.WithLabelValues("r").Inc()
	m.OnceSkips.WithLabelValues("r").Inc()
	m.CancelMarks.WithLabelValues("Sns.CallbackFriendDelete").Inc()
	m.Decisions.WithLabelValues(imevent.CmdPrevFriendAdd, "allow").Inc()
	m.DecisionDuration.Observe(0.001)
	m.UnstoredJobs.WithLabelValues(imevent.CmdPrevFriendAdd).Inc()
	m.LogsSuppressed.WithLabelValues("callback_rejected").Inc()
	job := &queue.Job{}
	job.Action = "log"
	hooks := m.QueueHooks()
	hooks.JobFinished(job, queue.OutcomeDone, nil, time.Millisecond)
	hooks.Redelivered(job, 2)
	m.ObserveIM("openim/sendmsg", im.ResultRateLimited)
	m.WatchQueue(func(context.Context) (queue.Stats, error) { return queue.Stats{}, nil })
	m.WatchStore(func() error { return nil })
	m.ObserveCounter("add", time.Millisecond, 1, nil)

	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	// Every metric friendflow declares must have been exercised above.
	fq := regexp.MustCompile(`fqName: "(friendflow_[^"]+)"`)
	descs := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range m.Collectors() {
			c.Describe(descs)
		}
		close(descs)
	}()
	for d := range descs {
		if n := fq.FindStringSubmatch(d.String()); n != nil && out[n[1]] == nil {
			t.Errorf("metric %s is not exercised by this test: give it a sample above", n[1])
		}
	}
	return out
}

// targetLabels are added by Prometheus when scraping through a
// ServiceMonitor, or are the histogram bucket label.
var targetLabels = []string{"namespace", "pod", "job", "instance", "service", "container", "endpoint", "le"}

// clusterWide are the gauges every replica reports alike, read from the
// one shared store: summing them over replicas multiplies them.
var clusterWide = []string{"friendflow_dead_letters", "friendflow_dead_letters_discarded_total",
	"friendflow_queue_jobs", "friendflow_queue_in_flight_messages", "friendflow_queue_oldest_wait_seconds"}

// grafanaVars are the dashboard's variables that stand for a duration,
// replaced by one so that the expression parses as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// exprProblems parses a PromQL expression with Prometheus's own parser
// and returns what is wrong with it: a syntax error, a friendflow_* name
// that is not a metric (or a histogram's _bucket, _sum, _count series) of
// the registry, a label matcher naming a label the metric lacks, a sum()
// over a cluster-wide gauge, or no friendflow metric at all.
func exprProblems(expr string, fams map[string]*dto.MetricFamily) []string {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return []string{fmt.Sprintf("%q does not parse: %v", expr, err)}
	}
	var problems []string
	found := 0
	parser.Inspect(parsed, func(node parser.Node, path []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok || !strings.HasPrefix(vs.Name, "friendflow_") {
			return nil
		}
		found++
		f := familyOf(vs.Name, fams)
		if f == nil {
			problems = append(problems, vs.Name+" is not a friendflow metric")
			return nil
		}
		labels := slices.Clone(targetLabels)
		for _, lp := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		for _, lm := range vs.LabelMatchers {
			if lm.Name != "__name__" && !slices.Contains(labels, lm.Name) {
				problems = append(problems, fmt.Sprintf("%s has no label %s", vs.Name, lm.Name))
			}
		}
		if slices.Contains(clusterWide, f.GetName()) {
			for _, up := range path {
				if agg, ok := up.(*parser.AggregateExpr); ok && agg.Op == parser.SUM {
					problems = append(problems, fmt.Sprintf("sum() over %s, which every replica reports alike: use max()", vs.Name))
				}
			}
		}
		return nil
	})
	if found == 0 {
		problems = append(problems, fmt.Sprintf("%q names no friendflow metric", expr))
	}
	return problems
}

// familyOf is the metric family of a series name, histograms' included.
func familyOf(name string, fams map[string]*dto.MetricFamily) *dto.MetricFamily {
	if f := fams[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && fams[base].GetType() == dto.MetricType_HISTOGRAM {
			return fams[base]
		}
	}
	return nil
}

func checkExpr(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for _, p := range exprProblems(expr, fams) {
		t.Errorf("%s: %s", where, p)
	}
}

// TestExprProblems: the checker catches each kind of mistake.
func TestExprProblems(t *testing.T) {
	fams := exercisedFamilies(t)
	for expr, want := range map[string]string{
		`friendflow_dead_letters > 0`: "",
		`histogram_quantile(0.9, sum by (le) (rate(friendflow_callback_duration_seconds_bucket[$__rate_interval])))`: "",
		`max(friendflow_queue_jobs{pod=~"$pod"})`:              "",
		`sum(rate(friendflow_jobs_total{outcome="dead"}[5m]))`: "",
		`friendflow_dead_leters > 0`:                           "is not a friendflow metric",
		`rate(friendflow_jobs_total{rule="x"}[5m])`:            "has no label rule",
		`sum(friendflow_dead_letters)`:                         "use max()",
		`sum by (pod) (delta(friendflow_queue_jobs[5m]))`:      "use max()",
		`rate(friendflow_jobs_total[5m]`:                       "does not parse",
		`up == 0`:                                              "names no friendflow metric",
	} {
		got := strings.Join(exprProblems(expr, fams), "; ")
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("%s: problems %q, want %q", expr, got, want)
		}
	}
}

// TestMonitoringKit decodes examples/kubernetes/monitoring.yaml and
// grafana-dashboard.json strictly and checks that every metric their
// PromQL names exists in friendflow's registry, with the labels used.
func TestMonitoringKit(t *testing.T) {
	fams := exercisedFamilies(t)
	raw, err := os.ReadFile(filepath.Join(kubeDir, "monitoring.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		svc    metricsService
		sm     serviceMonitor
		pr     prometheusRule
		alerts []string
	)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := node.Decode(&head); err != nil {
			t.Fatal(err)
		}
		doc, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		var into any
		switch head.Kind {
		case "Service":
			into = &svc
		case "ServiceMonitor":
			into = &sm
		case "PrometheusRule":
			into = &pr
		default:
			t.Fatalf("unexpected kind %q in monitoring.yaml", head.Kind)
		}
		if err := decodeStrict(doc, into); err != nil {
			t.Errorf("%s: %v", head.Kind, err)
		}
	}
	if svc.APIVersion != "v1" || sm.APIVersion != "monitoring.coreos.com/v1" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersions: %s %s %s", svc.APIVersion, sm.APIVersion, pr.APIVersion)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the Service lacks", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || len(svc.Spec.Ports) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name ||
		sm.Spec.Endpoints[0].Path != "/metrics" || svc.Spec.Ports[0].TargetPort != "admin" {
		t.Errorf("the ServiceMonitor does not scrape /metrics on the admin port: %+v, %+v", sm.Spec.Endpoints, svc.Spec.Ports)
	}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s lacks for, severity or summary", r.Alert)
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, fams)
		}
	}
	for _, want := range []string{"FriendflowRulesReloadFailing", "FriendflowDeadLettersGrowing", "FriendflowCallbackFailures", "FriendflowJobsWaiting",
		"FriendflowIMRateLimited", "FriendflowStoreNotWritable", "FriendflowRuleErrors", "FriendflowPrevFailingOpen",
		"FriendflowDeadLettersDiscarded", "FriendflowTargetDown", "FriendflowQueueDown"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}

	raw, err = os.ReadFile(filepath.Join(kubeDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	jd := json.NewDecoder(bytes.NewReader(raw))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(d.Panels) < 8 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	var all strings.Builder
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for _, want := range []string{"friendflow_store_writable", "friendflow_rule_errors_total", `decision="fail_open"`,
		"friendflow_dead_letters_discarded_total", `outcome=~"retried|dead"`, "friendflow_rules_last_reload_success", `friendflow_im_requests_total`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no dashboard panel shows %s", want)
		}
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, fams)
		}
	}
}
