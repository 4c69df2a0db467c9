package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// The dlq commands operate on the dead letters of a running instance
// through its admin API, so they work the same against the embedded store
// and a cluster.

// dlqListCommand lists the dead letters.
func dlqListCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	outputJSON := declareJSONOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("dlq list takes no ids")
		}
		asJSON, err := outputJSON()
		if err != nil {
			return err
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		raw, err := client.call(ctx, http.MethodGet, "/dlq", nil)
		if err != nil {
			return err
		}
		if asJSON {
			_, err := inv.stdout.Write(raw)
			return err
		}
		out, err := decodeAnswer[admin.DeadLetterList](raw, "/dlq")
		if err != nil {
			return err
		}
		return printDeadLetters(inv.stdout, out.DeadLetters)
	}
}

func printDeadLetters(w io.Writer, dls []admin.DeadLetterView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRULE\tACTION\tATTEMPTS\tLAST ATTEMPT\tLAST ERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Rule, d.Action, d.Attempts,
			d.LastAttempt.Format(time.RFC3339), oneLine(d.LastError, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letters\n", len(dls))
	return err
}

// dlqShowCommand prints one dead letter: the job, each attempt's error and
// the event, with secret parameters redacted.
func dlqShowCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	outputJSON := declareJSONOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("dlq show takes one job id")
		}
		asJSON, err := outputJSON()
		if err != nil {
			return err
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		raw, err := client.call(ctx, http.MethodGet, "/dlq/"+url.PathEscape(inv.args[0]), nil)
		if err != nil {
			return err
		}
		if asJSON {
			_, err := inv.stdout.Write(raw)
			return err
		}
		return showDeadLetter(inv.stdout, raw)
	}
}

// showDeadLetter prints GET /dlq/{id}'s answer for people.
func showDeadLetter(w io.Writer, raw []byte) error {
	d, err := decodeAnswer[admin.DeadLetterDetail](raw, "/dlq/ID")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", d.ID}, {"rule", d.Rule}, {"action", d.Action}, {"reason", d.Reason},
		{"attempts", fmt.Sprint(d.Attempts)}, {"first attempt", stamp(d.FirstAttempt)},
		{"last attempt", stamp(d.LastAttempt)}, {"dead at", stamp(d.DeadAt)},
		{"callback", d.CallbackID}, {"once key", d.OnceKey}, {"last error", d.LastError},
	} {
		if row[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprint(w, "parameters:\n  ")
	enc := json.NewEncoder(w)
	enc.SetIndent("  ", "  ")
	enc.SetEscapeHTML(false) // printed for people: <redacted> stays readable
	if err := enc.Encode(d.Params); err != nil {
		return err
	}
	fmt.Fprintln(w, "errors:")
	if len(d.Errors) == 0 {
		fmt.Fprintln(w, "  (none recorded)")
	}
	for _, e := range d.Errors {
		fmt.Fprintf(w, "  attempt %d at %s: %s\n", e.Attempt, stamp(e.At), e.Error)
	}
	if len(d.Event) > 0 {
		var ev bytes.Buffer
		if json.Indent(&ev, d.Event, "  ", "  ") == nil {
			fmt.Fprintf(w, "event:\n  %s\n", ev.Bytes())
		}
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// dlqMoveCommand replays or drops dead letters (sub is replay or drop).
func dlqMoveCommand(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		af := addAdminFlags(fs)
		all := fs.Bool("all", false, sub+" every dead letter")
		return func(ctx context.Context, inv *invocation) error {
			ids := inv.args
			if len(ids) == 0 && !*all {
				return usagef("dlq %s needs job ids or --all", sub)
			}
			if len(ids) > 0 && *all {
				return usagef("dlq %s takes job ids or --all, not both", sub)
			}
			client, err := af.client(inv.cmdline)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(admin.DeadLetterSelection{All: *all, IDs: ids})
			raw, err := client.call(ctx, http.MethodPost, "/dlq/"+sub, body)
			if err != nil {
				return err
			}
			out, err := decodeAnswer[admin.DeadLettersMoved](raw, "/dlq/"+sub)
			if err != nil {
				return err
			}
			past := map[string]string{"replay": "replayed", "drop": "dropped"}[sub]
			_, err = fmt.Fprintf(inv.stdout, "%d %s\n", out.Count(), past)
			return err
		}
	}
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
