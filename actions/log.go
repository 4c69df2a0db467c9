package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// Log writes one structured log record per job. It fails only on
// parameters that do not decode: a log line that cannot be written has
// nowhere better to go.
type Log struct {
	Logger *slog.Logger // nil: slog.Default()
	// Accounts are the event fields that say who an event is about, shown
	// in each line as attributes named after them (From_Account is
	// "from"); the rest of the event is noise in a log line. The
	// composition root passes the field table's accounts: this package
	// knows nothing of the event but that it is JSON.
	Accounts []string
}

var logSpec = Spec{
	Name:   "log",
	Doc:    "Writes one structured log record with the rule, the job id and the event's accounts.",
	Params: ParamsOf[LogParams](),
}

// Spec implements Kind.
func (l *Log) Spec() Spec { return logSpec }

// LogParams are a log job's parameters.
type LogParams struct {
	Message string
	Level   string // one of the Enum: slog's level names
	Fields  map[string]any
}

// DeclareParams implements Declarer.
func (p *LogParams) DeclareParams(d *Decl) {
	d.Param(&p.Message, Param{Name: "message", Example: `"welcomed ${ From_Account }"`, Default: "rule matched", Doc: "the log message"})
	d.Param(&p.Level, Param{Name: "level", Example: `warn`, Default: "info", Enum: []string{"debug", "info", "warn", "error"}, Doc: "log level"})
	d.Param(&p.Fields, Param{Name: "fields", Example: `{team: growth}`, Doc: "extra fields added to the record"})
}

// Do implements Kind.
func (l *Log) Do(ctx context.Context, job Job, params map[string]any) error {
	p, err := Decode[LogParams](logSpec, params)
	if err != nil {
		return Permanent(fmt.Errorf("log: %w", err))
	}
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(p.Level)); err != nil {
		return Permanent(fmt.Errorf("log: level: %w", err)) // the Enum keeps it out
	}
	if !logger.Enabled(ctx, level) {
		return nil // skip decoding the event for a line nobody will see
	}
	attrs := []slog.Attr{
		slog.String("rule", job.Rule),
		slog.String("job_id", job.ID),
	}
	attrs = append(attrs, l.accountAttrs(job.Event)...)
	if len(p.Fields) > 0 {
		attrs = append(attrs, fieldsGroup(p.Fields))
	}
	logger.LogAttrs(ctx, level, p.Message, attrs...)
	return nil
}

// accountAttrs are the event's command and the accounts it is about;
// none for an event that does not decode.
func (l *Log) accountAttrs(event json.RawMessage) []slog.Attr {
	var ev map[string]any
	if len(event) == 0 || json.Unmarshal(event, &ev) != nil {
		return nil
	}
	cmd, _ := ev["CallbackCommand"].(string)
	attrs := []slog.Attr{slog.String("command", cmd)}
	for _, name := range l.Accounts {
		if v, _ := ev[name].(string); v != "" {
			attrs = append(attrs, slog.String(strings.ToLower(strings.TrimSuffix(name, "_Account")), v))
		}
	}
	return attrs
}

// fieldsGroup is the rule's extra fields, sorted so that one rule's lines
// always read the same way.
func fieldsGroup(f map[string]any) slog.Attr {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fa := make([]any, 0, len(f))
	for _, k := range keys {
		fa = append(fa, slog.Any(k, f[k]))
	}
	return slog.Group("fields", fa...)
}
