package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	m.CountEvents(imevent.CmdFriendAdd, 1)
	m.CountMatch("r")
	m.RuleErrors.WithLabelValues("r").Inc()
	m.OnceSkips.WithLabelValues("r").Inc()
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

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// a metric name, and the label matchers that may follow it
	promSelector = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// targetLabels are added by Prometheus when scraping through a
// ServiceMonitor, or are the histogram bucket label.
var targetLabels = []string{"namespace", "pod", "job", "instance", "service", "container", "endpoint", "le"}

// checkExpr checks that every friendflow_* name in a PromQL expression is
// a metric (or a histogram's _bucket, _sum, _count series) of the
// registry, and that its label matchers name labels it has.
func checkExpr(t *testing.T, where, expr string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	bare := promString.ReplaceAllString(expr, `""`)
	found := 0
	for _, m := range promSelector.FindAllStringSubmatch(bare, -1) {
		name := m[1]
		if !strings.HasPrefix(name, "friendflow_") {
			continue
		}
		found++
		f := fams[name]
		if f == nil {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && fams[base].GetType() == dto.MetricType_HISTOGRAM {
					f = fams[base]
				}
			}
		}
		if f == nil {
			t.Errorf("%s: %s is not a friendflow metric", where, name)
			continue
		}
		labels := slices.Clone(targetLabels)
		for _, lp := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		for _, lm := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(labels, lm[1]) {
				t.Errorf("%s: %s has no label %s", where, name, lm[1])
			}
		}
	}
	if found == 0 {
		t.Errorf("%s: %q names no friendflow metric", where, expr)
	}
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "[") != strings.Count(expr, "]") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
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
	for _, want := range []string{"FriendflowRulesReloadFailing", "FriendflowDeadLettersGrowing", "FriendflowCallbackFailures", "FriendflowJobsWaiting", "FriendflowIMRateLimited"} {
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
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, fams)
		}
	}
}
