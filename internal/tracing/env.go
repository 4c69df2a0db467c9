package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config is what FromEnv read from the environment.
type Config struct {
	Exporters []string // "otlp", "console"; empty: tracing off
}

// ParseEnv reads the variables of the OpenTelemetry SDK environment
// specification (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
// that decide whether friendflow traces and where to:
//
//   - OTEL_SDK_DISABLED=true turns tracing off whatever else is set;
//   - OTEL_TRACES_EXPORTER is a comma-separated list of otlp, console
//     (spans as JSON on standard output) and none;
//   - unset, tracing is on with otlp when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and off otherwise. The
//     specification's default is otlp; friendflow waits to be pointed at a
//     collector rather than sending spans to localhost:4318 in every pod.
//
// OTLP goes over http/protobuf only: OTEL_EXPORTER_OTLP_PROTOCOL or
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL set to anything else is an error.
// Unknown exporter names are reported through warn and ignored, as the
// specification asks.
func ParseEnv(getenv func(string) string, warn func(msg string, args ...any)) (Config, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Config{}, nil
	}
	list := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if list == "" {
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return Config{}, nil
		}
		list = "otlp"
	}
	var c Config
	for name := range strings.SplitSeq(list, ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "none":
			return Config{}, nil
		case "otlp", "console":
			c.Exporters = append(c.Exporters, name)
		default:
			warn("OTEL_TRACES_EXPORTER: unsupported exporter ignored (friendflow has otlp, console and none)", "exporter", name)
		}
	}
	if !slices.Contains(c.Exporters, "otlp") {
		return c, nil
	}
	for _, key := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(key)); p != "" {
			if p != "http/protobuf" {
				return Config{}, fmt.Errorf("%s=%s: friendflow exports traces over http/protobuf only", key, p)
			}
			break // the traces-specific variable wins
		}
	}
	return c, nil
}

// FromEnv returns the Tracer the environment asks for (see ParseEnv), or
// nil when tracing is off. The OTLP exporter reads its endpoint, headers,
// timeout, compression and certificates from the OTEL_EXPORTER_OTLP_*
// variables; the batch span processor and the sampler read OTEL_BSP_* and
// OTEL_TRACES_SAMPLER; the resource takes OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES over service.name friendflow. Console spans go
// to stdout. Exporter errors are logged on log.
func FromEnv(ctx context.Context, getenv func(string) string, version string, stdout io.Writer, log *slog.Logger) (*Tracer, error) {
	cfg, err := ParseEnv(getenv, log.Warn)
	if err != nil || len(cfg.Exporters) == 0 {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "friendflow"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the operator's names win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, name := range cfg.Exporters {
		var exp sdktrace.SpanExporter
		switch name {
		case "otlp":
			exp, err = otlptracehttp.New(ctx)
		case "console":
			exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
		}
		if err != nil {
			return nil, fmt.Errorf("tracing exporter %s: %w", name, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	// The SDK reports export failures to the global error handler, which
	// would write them with the standard log package, outside slog.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: could not export spans", "component", "otel", "err", err)
	}))
	tp := sdktrace.NewTracerProvider(opts...)
	t := New(tp)
	t.shutdown = tp.Shutdown
	log.Info("tracing on", "exporters", strings.Join(cfg.Exporters, ","))
	return t, nil
}
