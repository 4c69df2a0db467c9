package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// dlq operates on the dead letters of a running instance through its admin
// API, so it works the same against the embedded store and a cluster.
func dlq(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usagef("dlq needs a subcommand: list, show ID, replay ID…|--all, drop ID…|--all")
	}
	sub := args[0]
	fs := newFlagSet("dlq " + sub)
	adminAddr := fs.String("admin-listen", "127.0.0.1:9090", "admin address of the running friendflow")
	all := fs.Bool("all", false, "replay or drop every dead letter")
	asJSON := fs.Bool("json", false, "list, show: print JSON")
	ids, err := parseArgs(fs, args[1:], getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "Usage: friendflow dlq list|show ID|replay ID…|--all|drop ID…|--all [flags]\n\nFlags:\n")
		printDefaults(stdout, fs)
		return err
	}
	if err != nil {
		return err
	}
	base := "http://" + *adminAddr
	if strings.HasPrefix(*adminAddr, "http://") || strings.HasPrefix(*adminAddr, "https://") {
		base = *adminAddr
	}
	client := &http.Client{Timeout: 30 * time.Second}
	switch sub {
	case "list":
		if len(ids) > 0 || *all {
			return usagef("dlq list takes no ids")
		}
		var out struct {
			DeadLetters []admin.DeadLetterView `json:"dead_letters"`
		}
		raw, err := call(ctx, client, http.MethodGet, base+"/dlq", nil)
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
	case "show":
		if len(ids) != 1 || *all {
			return usagef("dlq show takes one job id")
		}
		raw, err := call(ctx, client, http.MethodGet, base+"/dlq/"+url.PathEscape(ids[0]), nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		return showDeadLetter(stdout, raw)
	case "replay", "drop":
		if len(ids) == 0 && !*all {
			return usagef("dlq %s needs job ids or --all", sub)
		}
		if len(ids) > 0 && *all {
			return usagef("dlq %s takes job ids or --all, not both", sub)
		}
		req := map[string]any{"ids": ids, "all": *all}
		body, _ := json.Marshal(req)
		raw, err := call(ctx, client, http.MethodPost, base+"/dlq/"+sub, body)
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
	return usagef("unknown dlq subcommand %q (list, show, replay, drop)", sub)
}

// showDeadLetter prints GET /dlq/{id}'s answer for people.
func showDeadLetter(w io.Writer, raw []byte) error {
	var d admin.DeadLetterDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("reading /dlq/ID: %w", err)
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

func call(ctx context.Context, client *http.Client, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is friendflow running with this --admin-listen? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, oneLine(e.Error, 300))
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, oneLine(string(raw), 300))
	}
	return raw, nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
