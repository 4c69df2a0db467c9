package actions

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
)

// Log writes one structured log record per job. It never fails: a log line
// that cannot be written has nowhere better to go.
type Log struct {
	Logger *slog.Logger // nil: slog.Default()
}

var logSpec = Spec{
	Name: "log",
	Doc:  "Writes one structured log record with the rule, the job id and the event's accounts.",
	Params: []Param{
		{Name: "message", Type: String, Default: "rule matched", Doc: "the log message"},
		{Name: "level", Type: String, Default: "info", Enum: []string{"debug", "info", "warn", "error"}, Doc: "log level"},
		{Name: "fields", Type: Map, Doc: "extra fields added to the record"},
	},
}

// Spec implements Kind.
func (l *Log) Spec() Spec { return logSpec }

// eventAccounts are the fields that say who an event is about; the rest of
// the event is noise in a log line.
type eventAccounts struct {
	CallbackCommand   string `json:"CallbackCommand"`
	From_Account      string `json:"From_Account"`
	To_Account        string `json:"To_Account"`
	Initiator_Account string `json:"Initiator_Account"`
	Requester_Account string `json:"Requester_Account"`
	Admin_Account     string `json:"Admin_Account"`
}

// Do implements Kind.
func (l *Log) Do(ctx context.Context, job Job, params map[string]any) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// Comma-ok reads: a log action must not panic on params that skipped
	// Check (an unknown level is info, a missing message the default).
	var level slog.Level
	if s, ok := params["level"].(string); ok {
		_ = level.UnmarshalText([]byte(s))
	}
	msg, ok := params["message"].(string)
	if !ok {
		msg = "rule matched"
	}
	if !logger.Enabled(ctx, level) {
		return nil // skip decoding the event for a line nobody will see
	}
	attrs := []slog.Attr{
		slog.String("rule", job.Rule),
		slog.String("job_id", job.ID),
	}
	var acc eventAccounts
	if len(job.Event) > 0 && json.Unmarshal(job.Event, &acc) == nil {
		attrs = append(attrs, slog.String("command", acc.CallbackCommand))
		for _, a := range []struct{ k, v string }{
			{"from", acc.From_Account}, {"to", acc.To_Account},
			{"initiator", acc.Initiator_Account}, {"requester", acc.Requester_Account},
			{"admin", acc.Admin_Account},
		} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
	}
	if f, ok := params["fields"].(map[string]any); ok && len(f) > 0 {
		// Sorted, so one rule's lines always read the same way.
		keys := make([]string, 0, len(f))
		for k := range f {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fa := make([]any, 0, len(f))
		for _, k := range keys {
			fa = append(fa, slog.Any(k, f[k]))
		}
		attrs = append(attrs, slog.Group("fields", fa...))
	}
	logger.LogAttrs(ctx, level, msg, attrs...)
	return nil
}
