package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
)

// backtestCommand runs candidate rules over recorded events, without side
// effects, and prints what would change.
func backtestCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	eventsFile := fs.String("events", "", "recorded events as JSONL (friendflow events export) instead of --admin-url")
	format := declareFormat(fs, formatText, formatJSON)
	failOnChange := fs.Bool("fail-on-change", false, "exit 1 when anything would change")
	live := declareLiveCounters(fs, af, "counters the replay starts from: empty, or live (a running deployment's as they are now, read through --admin-url, never written)")
	return func(ctx context.Context, inv *invocation) error {
		if err := checkFormat(*format, formatText, formatJSON); err != nil {
			return err
		}
		if len(inv.args) == 0 {
			return usagef("backtest needs PATH…: the candidate rules")
		}
		base, err := live(inv)
		if err != nil {
			return err
		}
		if *eventsFile != "" && inv.cmdline["admin-url"] && base == nil {
			return usagef("backtest reads --admin-url or --events, not both (but for --counters live, which reads the deployment's counters)")
		}
		var lists rules.Lists // --events: every list is empty
		if *eventsFile == "" {
			client, err := af.client(inv.cmdline)
			if err != nil {
				return err
			}
			lists = &remoteLists{ctx: ctx, client: client, memo: map[[2]string]bool{}}
		}
		set, err := rules.LoadPaths(inv.args, rules.Options{Registry: newRegistry(slog.New(slog.DiscardHandler), nil),
			Getenv: inv.getenv, Lists: lists})
		if le := (*rules.LoadError)(nil); errors.As(err, &le) {
			return notLoaded(inv, le, "the candidate rules")
		}
		if err != nil {
			return err
		}
		src, err := recordedEvents(ctx, af, *eventsFile, inv.cmdline)
		if err != nil {
			return err
		}
		defer src.Close()
		// One event at a time, as read: only the diff is held.
		bt := record.NewBacktest(set)
		var seeded *rules.SeededCounters
		if base != nil {
			seeded = rules.NewSeededCounters(base)
			bt = record.NewBacktestCounters(set, seeded)
		}
		if err := record.ScanJSONL(src, bt.Add); err != nil {
			return fmt.Errorf("recorded events: %w", err)
		}
		if seeded != nil {
			if err := seeded.Err(); err != nil {
				return fmt.Errorf("--counters live: reading the deployment's counters: %w", err)
			}
		}
		d := bt.Diff()
		if *format == formatJSON {
			writeJSON(inv.stdout, d)
		} else {
			printDiff(inv.stdout, d)
		}
		if *failOnChange && d.Changed {
			return &exitError{1}
		}
		return nil
	}
}

// recordedEvents opens the JSONL of recorded events: file, or else the
// export of the running instance af names, streamed.
func recordedEvents(ctx context.Context, af *adminFlags, file string, cmdline map[string]bool) (io.ReadCloser, error) {
	if file != "" {
		return os.Open(file)
	}
	client, err := af.client(cmdline)
	if err != nil {
		return nil, err
	}
	return client.getStream(ctx, "/events/export")
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
