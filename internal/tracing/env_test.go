package tracing

import (
	"slices"
	"strings"
	"testing"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    []string // exporters; nil: off
		err     string
		warning string
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: []string{"otlp"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, want: []string{"otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: []string{"otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": " Console "}, want: []string{"console"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, want: []string{"otlp", "console"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, want: []string{"console"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, warning: "zipkin"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin,console"}, want: []string{"console"}, warning: "zipkin"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, want: []string{"otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, err: "http/protobuf only"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: []string{"console"}},
	}
	for _, tt := range tests {
		var warnings []string
		c, err := ParseEnv(func(k string) string { return tt.env[k] }, func(msg string, args ...any) {
			for _, a := range args {
				if s, ok := a.(string); ok {
					msg += " " + s
				}
			}
			warnings = append(warnings, msg)
		})
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: error %v, want %q", tt.env, err, tt.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tt.env, err)
		case !slices.Equal(c.Exporters, tt.want):
			t.Errorf("%v: exporters %v, want %v", tt.env, c.Exporters, tt.want)
		}
		if got := strings.Join(warnings, "\n"); (tt.warning == "") != (got == "") || !strings.Contains(got, tt.warning) {
			t.Errorf("%v: warnings %q, want %q", tt.env, got, tt.warning)
		}
	}
}
