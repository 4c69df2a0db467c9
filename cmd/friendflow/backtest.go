package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
)

// defaultAdminURL is where the commands that call a running instance find
// it: serve's --admin-listen default.
const defaultAdminURL = "http://127.0.0.1:9090"

// adminClient calls a running instance's admin API, with its token when
// one is configured.
type adminClient struct {
	url, tokenFile string
	http           *http.Client
}

func (c *adminClient) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "admin-url", defaultAdminURL, "admin API of the running friendflow")
	fs.StringVar(&c.tokenFile, "admin-token-file", "", "file holding the admin token (serve's --admin-token-file)")
}

func (c *adminClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.url, "/")+path, nil)
	if err != nil {
		return nil, usagef("--admin-url: %v", err)
	}
	if c.tokenFile != "" {
		tok, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--admin-token-file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	client := c.http
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is friendflow running with its admin API at --admin-url %s? %w", c.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, oneLine(string(raw), 300))
	}
	return raw, nil
}

// eventsCmd is `friendflow events export`: the recorded events of a
// running instance as JSONL, for `backtest --events`.
func eventsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "export" {
		return usagef("events needs a subcommand: export")
	}
	var c adminClient
	fs := newFlagSet("events export")
	c.flags(fs)
	pos, err := parseArgs(fs, args[1:], getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: friendflow events export [flags] > events.jsonl\n\nFlags:\n")
		printDefaults(stdout, fs)
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("events export takes no arguments, got %q", pos)
	}
	raw, err := c.get(ctx, "/events/export")
	if err != nil {
		return err
	}
	_, err = stdout.Write(raw)
	return err
}

// backtest runs candidate rules over recorded events, without side
// effects, and prints what would change.
func backtest(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var (
		c            adminClient
		eventsFile   string
		format       string
		failOnChange bool
	)
	fs := newFlagSet("backtest")
	c.flags(fs)
	fs.StringVar(&eventsFile, "events", "", "recorded events as JSONL (friendflow events export) instead of --admin-url")
	fs.StringVar(&format, "format", "text", "text or json")
	fs.BoolVar(&failOnChange, "fail-on-change", false, "exit 1 when anything would change")
	pos, cmdline, err := parseArgsFrom(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: friendflow backtest PATH [--admin-url URL | --events FILE.jsonl] [flags]\n\nPATH is the candidate rules: a directory of *.yaml/*.yml files or one file.\n\nFlags:\n")
		printDefaults(stdout, fs)
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("backtest takes one PATH (the candidate rules), got %q", pos)
	}
	if format != "text" && format != "json" {
		return usagef("--format must be text or json, got %q", format)
	}
	if eventsFile != "" && cmdline["admin-url"] {
		return usagef("backtest reads --admin-url or --events, not both")
	}
	var raw []byte
	if eventsFile != "" {
		raw, err = os.ReadFile(eventsFile)
	} else {
		raw, err = c.get(ctx, "/events/export")
	}
	if err != nil {
		return err
	}
	events, err := record.ReadJSONL(raw)
	if err != nil {
		return fmt.Errorf("recorded events: %w", err)
	}
	set, err := loadRules(pos[0], getenv, false, stdout, stderr, ": the candidate rules do not load")
	if err != nil {
		return err
	}
	d, err := record.Backtest(set, events)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return err
		}
	} else {
		printDiff(stdout, d)
	}
	if failOnChange && d.Changed {
		return &exitError{1}
	}
	return nil
}

func printDiff(w io.Writer, d *record.Diff) {
	fmt.Fprintf(w, "backtest over %d recorded events", d.Events)
	if d.Truncated > 0 {
		fmt.Fprintf(w, " (%d had long strings clipped when recorded)", d.Truncated)
	}
	fmt.Fprintln(w)
	for _, r := range d.Rules {
		fmt.Fprintf(w, "  %s: %d newly matched%s, %d no longer matched%s, %d unchanged, %d with changed actions",
			r.Rule, len(r.NewlyMatched), ids(r.NewlyMatched), len(r.NoLongerMatched), ids(r.NoLongerMatched), r.Unchanged, r.ActionsChanged)
		if len(r.Errors) > 0 {
			fmt.Fprintf(w, ", fails on %d%s", len(r.Errors), ids(r.Errors))
		}
		fmt.Fprintln(w)
		for _, ch := range r.Changes {
			fmt.Fprintf(w, "      event %d: %s\n        → %s\n", ch.Event, actionsText(ch.Old), actionsText(ch.New))
		}
	}
	for _, f := range d.Decisions {
		fmt.Fprintf(w, "  decision for %s (event %d): %s → %s\n", f.To, f.Event, decisionText(f.Old), decisionText(f.New))
	}
	if d.Changed {
		fmt.Fprintln(w, "changed")
	} else {
		fmt.Fprintln(w, "no change")
	}
}

// ids shows up to 10 event IDs.
func ids(list []uint64) string {
	if len(list) == 0 {
		return ""
	}
	s := make([]string, 0, 10)
	for i, id := range list {
		if i == 10 {
			s = append(s, "…")
			break
		}
		s = append(s, fmt.Sprint(id))
	}
	return " [" + strings.Join(s, " ") + "]"
}

func actionsText(as []rules.ActionTrace) string {
	if len(as) == 0 {
		return "(no actions)"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		p, _ := json.Marshal(a.Params)
		parts[i] = a.Kind + " " + string(p)
	}
	return strings.Join(parts, "; ")
}

func decisionText(d rules.Decision) string {
	if !d.Deny {
		return "allow"
	}
	return fmt.Sprintf("deny %d %q", d.Code, d.Reason)
}
