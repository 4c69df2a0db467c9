package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
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
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("dlq list takes no ids")
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		raw, err := client.call(ctx, http.MethodGet, "/dlq", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := inv.stdout.Write(raw)
			return err
		}
		var out struct {
			DeadLetters []admin.DeadLetterView `json:"dead_letters"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("reading /dlq: %w", err)
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
			body, _ := json.Marshal(map[string]any{"ids": ids, "all": *all})
			raw, err := client.call(ctx, http.MethodPost, "/dlq/"+sub, body)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("reading /dlq/%s: %w", sub, err)
			}
			past := map[string]string{"replay": "replayed", "drop": "dropped"}[sub]
			_, err = fmt.Fprintf(inv.stdout, "%v %s\n", out[past], past)
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
