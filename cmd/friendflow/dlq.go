package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// dlq operates on the dead letters of a running instance through its admin
// API, so it works the same against the embedded store and a cluster.
func dlq(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usagef("dlq needs a subcommand: list, replay ID…|--all, drop ID…|--all")
	}
	sub := args[0]
	fs := newFlagSet("dlq " + sub)
	af := addAdminFlags(fs)
	all := fs.Bool("all", false, "replay or drop every dead letter")
	asJSON := fs.Bool("json", false, "list: print JSON")
	ids, cmdline, err := parseArgsFrom(fs, args[1:], getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: friendflow dlq list|replay ID…|--all|drop ID…|--all [flags]\n\nFlags:\n")
		printDefaults(stdout, fs)
		return err
	}
	if err != nil {
		return err
	}
	client, err := af.client(cmdline)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		if len(ids) > 0 || *all {
			return usagef("dlq list takes no ids")
		}
		var out struct {
			DeadLetters []admin.DeadLetterView `json:"dead_letters"`
		}
		raw, err := client.call(ctx, http.MethodGet, "/dlq", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("reading /dlq: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRULE\tACTION\tATTEMPTS\tLAST ATTEMPT\tLAST ERROR")
		for _, d := range out.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Rule, d.Action, d.Attempts,
				d.LastAttempt.Format(time.RFC3339), oneLine(d.LastError, 100))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letters\n", len(out.DeadLetters))
		return nil
	case "replay", "drop":
		if len(ids) == 0 && !*all {
			return usagef("dlq %s needs job ids or --all", sub)
		}
		if len(ids) > 0 && *all {
			return usagef("dlq %s takes job ids or --all, not both", sub)
		}
		req := map[string]any{"ids": ids, "all": *all}
		body, _ := json.Marshal(req)
		raw, err := client.call(ctx, http.MethodPost, "/dlq/"+sub, body)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("reading /dlq/%s: %w", sub, err)
		}
		past := map[string]string{"replay": "replayed", "drop": "dropped"}[sub]
		fmt.Fprintf(stdout, "%v %s\n", out[past], past)
		return nil
	}
	return usagef("unknown dlq subcommand %q (list, replay, drop)", sub)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
