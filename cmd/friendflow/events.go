package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/record"
)

// The events commands read the recorded events of the whole deployment
// (every replica's, kept in JetStream) through a running instance's admin
// API: a page at a time (list), one (show), as they come (tail, GET
// /events/stream) or all, streamed (export).

// maxEventsPage is GET /events' largest page.
const maxEventsPage = 1000

// eventFilterFlags are the filters list, tail and export share; the
// server reads them (GET /events' parameters).
type eventFilterFlags struct {
	rule, command, account, outcome, since, until *string
}

func addEventFilterFlags(fs *flag.FlagSet) eventFilterFlags {
	return eventFilterFlags{
		rule:    fs.String("rule", "", "only the events this rule matched, failed on, made jobs for or skipped"),
		command: fs.String("command", "", "only events of this CallbackCommand (Sns.CallbackFriendAdd, …)"),
		account: fs.String("account", "", "only events whose From_Account or To_Account is this"),
		outcome: fs.String("outcome", "", "only events with this outcome: "+strings.Join(record.Outcomes, ", ")+" (with --rule: that rule's)"),
		since:   fs.String("since", "", "only events received at or after: an RFC 3339 time, or a duration ago (1h)"),
		until:   fs.String("until", "", "only events received before: an RFC 3339 time, or a duration ago"),
	}
}

func (f eventFilterFlags) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]*string{"rule": f.rule, "command": f.command, "account": f.account, "outcome": f.outcome, "since": f.since, "until": f.until} {
		if *s != "" {
			v.Set(k, *s)
		}
	}
	return v
}

// eventsListCommand is `friendflow events list`: newest first, a page at
// a time.
func eventsListCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	ff := addEventFilterFlags(fs)
	limit := fs.Int("limit", 50, "print at most this many (0: every one, fetched a page at a time)")
	cursor := fs.Uint64("cursor", 0, "start below this event id, where a previous listing stopped")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("events list takes no arguments, got %q", inv.args)
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		if *limit < 0 || asJSON && (*limit < 1 || *limit > maxEventsPage) {
			return usagef("--limit must be 0 or more (with -o json, one page: 1 to %d)", maxEventsPage)
		}
		q := ff.query()
		if asJSON {
			q.Set("limit", strconv.Itoa(*limit))
			if *cursor > 0 {
				q.Set("cursor", strconv.FormatUint(*cursor, 10))
			}
			raw, err := client.call(ctx, http.MethodGet, "/events?"+q.Encode(), nil)
			if err == nil {
				_, err = inv.stdout.Write(raw)
			}
			return err
		}
		return listEvents(ctx, client, inv.stdout, q, *cursor, *limit)
	}
}

// listEvents prints up to limit events (0: all), a page at a time.
func listEvents(ctx context.Context, client *adminClient, w io.Writer, q url.Values, cursor uint64, limit int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tCOMMAND\tFROM → TO\tMATCHED\tOUTCOME")
	shown, recorded := 0, 0
	for {
		page := maxEventsPage
		if limit > 0 {
			page = min(limit-shown, maxEventsPage)
		}
		q.Set("limit", strconv.Itoa(page))
		if cursor > 0 {
			q.Set("cursor", strconv.FormatUint(cursor, 10))
		}
		raw, err := client.call(ctx, http.MethodGet, "/events?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		out, err := decodeAnswer[admin.EventList](raw, "/events")
		if err != nil {
			return err
		}
		for i := range out.Events {
			e := &out.Events[i]
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s → %s\t%s\t%s\n", e.ID, stamp(e.Received), e.Command, oneLine(e.From, 40), oneLine(e.To, 40),
				strings.Join(e.Matched, ","), eventOutcome(e))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		shown, recorded, cursor = shown+len(out.Events), out.Recorded, out.Next
		if cursor == 0 || limit > 0 && shown >= limit {
			break
		}
	}
	var err error
	if cursor != 0 {
		_, err = fmt.Fprintf(w, "%d shown of %d recorded events; more with --cursor %d (or --limit 0 for every one)\n", shown, recorded, cursor)
	} else {
		_, err = fmt.Fprintf(w, "%d shown of %d recorded events\n", shown, recorded)
	}
	return err
}

// eventOutcome is a short summary of what became of e.
func eventOutcome(e *record.Event) string {
	var parts []string
	if d := e.Decision; d != nil && d.ResultCode != 0 {
		parts = append(parts, fmt.Sprintf("denied %d", d.ResultCode))
	}
	if len(e.Errors) > 0 {
		parts = append(parts, "failed: "+strings.Join(e.Errors, ","))
	}
	if e.StoreError != "" {
		parts = append(parts, "not stored")
	}
	for _, s := range e.OnceSkipped {
		parts = append(parts, "skipped by once: "+s.Rule)
	}
	if n := len(e.Jobs); n > 0 {
		parts = append(parts, fmt.Sprintf("%d jobs", n))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// eventsShowCommand is `friendflow events show ID`: the event, each
// rule's outcome and what became of its jobs.
func eventsShowCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("events show takes one event id")
		}
		if _, err := strconv.ParseUint(inv.args[0], 10, 64); err != nil {
			return usagef("events show: %q is not an event id (a number, as events list shows)", inv.args[0])
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		tr, err := answer[admin.Trace](ctx, client, asJSON, inv.stdout, http.MethodGet, "/events/"+inv.args[0], nil)
		if tr == nil || err != nil {
			return err
		}
		return showEvent(inv.stdout, tr)
	}
}

func showEvent(w io.Writer, tr *admin.Trace) error {
	e := &tr.Event
	fmt.Fprintf(w, "event %d of callback %s, received %s\n", e.ID, e.CallbackID, stamp(e.Received))
	fmt.Fprintf(w, "  %s: %s → %s\n", e.Command, e.From, e.To)
	if e.Truncated {
		fmt.Fprintln(w, "  (long strings clipped when recorded)")
	}
	var data bytes.Buffer
	if json.Compact(&data, e.Data) != nil {
		data.Reset()
		data.Write(e.Data)
	}
	fmt.Fprintf(w, "  %s\n", data.Bytes())
	rulesNote := "the rules that decided"
	if !tr.CurrentRules {
		rulesNote = "rules " + e.RulesHash + ", no longer active"
		if tr.ActiveRules {
			rulesNote += " (explained with the active rules)"
		}
	}
	fmt.Fprintf(w, "rules (%s):\n", rulesNote)
	for _, r := range tr.Explanation.Rules {
		fmt.Fprintf(w, "  %s: %s\n", r.Rule, r.Status)
	}
	if d := e.Decision; d != nil {
		fmt.Fprintf(w, "decision: %d %s\n", d.ResultCode, d.ResultInfo)
	}
	if e.StoreError != "" {
		fmt.Fprintf(w, "jobs not stored: %s\n", e.StoreError)
	}
	for _, s := range e.OnceSkipped {
		fmt.Fprintf(w, "skipped by once: %s, key %q first seen %s by callback %s\n", s.Rule, s.Key, stamp(s.FirstSeen), s.FirstCallback)
	}
	for _, j := range e.Jobs {
		fmt.Fprintf(w, "job %s (%s, %s): %s", j.ID, j.Rule, j.Action, j.Outcome)
		if j.Attempt > 0 {
			fmt.Fprintf(w, " after attempt %d", j.Attempt)
		}
		if j.LastError != "" {
			fmt.Fprintf(w, ": %s", oneLine(j.LastError, 200))
		}
		fmt.Fprintln(w)
	}
	for _, u := range e.Trace {
		fmt.Fprintf(w, "  %s %s %s", stamp(u.At), u.Job, u.Outcome)
		if u.Attempt > 0 {
			fmt.Fprintf(w, " (attempt %d)", u.Attempt)
		}
		if u.Error != "" {
			fmt.Fprintf(w, ": %s", oneLine(u.Error, 200))
		}
		_, err := fmt.Fprintln(w)
		if err != nil {
			return err
		}
	}
	return nil
}

// eventsTailCommand is `friendflow events tail`: the new events as they
// are recorded, until interrupted (GET /events/stream).
func eventsTailCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	ff := addEventFilterFlags(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("events tail takes no arguments, got %q", inv.args)
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		body, err := client.getStream(ctx, "/events/stream?"+ff.query().Encode())
		if err != nil {
			return err
		}
		defer body.Close()
		err = readSSE(body, func(data []byte) error {
			if asJSON {
				_, err := inv.stdout.Write(append(bytes.TrimSpace(data), '\n'))
				return err
			}
			var e record.Event
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("reading /events/stream: %w", err)
			}
			_, err := fmt.Fprintf(inv.stdout, "%d  %s  %s  %s → %s  %s  %s\n", e.ID, stamp(e.Received), e.Command,
				oneLine(e.From, 40), oneLine(e.To, 40), strings.Join(e.Matched, ","), eventOutcome(&e))
			return err
		})
		if ctx.Err() != nil {
			return nil // interrupted: the normal end
		}
		if err == nil {
			err = errors.New("the server ended the event stream (stopping?)")
		}
		return err
	}
}

// readSSE calls fn with the data of each "event" of a server-sent event
// stream.
func readSSE(r io.Reader, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				if err := fn(data); err != nil {
					return err
				}
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
	return sc.Err()
}

// eventsExportCommand is `friendflow events export`: the recorded events
// as JSONL, oldest first, written as they arrive (for backtest --events).
func eventsExportCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	ff := addEventFilterFlags(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("events export takes no arguments, got %q", inv.args)
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		body, err := client.getStream(ctx, "/events/export?"+ff.query().Encode())
		if err != nil {
			return err
		}
		defer body.Close()
		if _, err := io.Copy(inv.stdout, body); err != nil {
			return fmt.Errorf("events export: %w", err)
		}
		return nil
	}
}

// getStream GETs path and returns the answer's body to read as it comes: no
// timeout but ctx's, nothing held whole.
func (c *adminClient) getStream(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if len(c.token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach friendflow's admin API at %s: is it running, and is %s its --admin-listen? %w", c.base, flagRef("admin-url"), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		p, _, _ := strings.Cut(path, "?")
		return nil, &adminError{http.MethodGet, p, resp.StatusCode, errorMessage(raw)}
	}
	return resp.Body, nil
}
