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
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// The dlq commands operate on the dead letters of a running instance
// through its admin API, so they work the same against the embedded store
// and a cluster.

// dlqListCommand lists the dead letters, a page at a time: the server
// never holds more than a page, nor does this command.
func dlqListCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	ff := addDeadFilterFlags(fs)
	limit := fs.Int("limit", 100, "print at most this many (0: every one, fetched a page at a time)")
	cursor := fs.String("cursor", "", "start where a previous listing stopped")
	newest := fs.Bool("newest", false, "newest first")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("dlq list takes no ids")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		if *limit < 0 || asJSON && (*limit < 1 || *limit > maxDeadPage) {
			return usagef("--limit must be 0 or more (with -o json, one page: 1 to %d)", maxDeadPage)
		}
		q := ff.query()
		if *newest {
			q.Set("order", "newest")
		}
		if asJSON {
			q.Set("limit", strconv.Itoa(*limit))
			q.Set("cursor", *cursor)
			raw, err := client.call(ctx, http.MethodGet, "/dlq?"+q.Encode(), nil)
			if err == nil {
				_, err = inv.stdout.Write(raw)
			}
			return err
		}
		return listDeadLetters(ctx, client, inv.stdout, q, *cursor, *limit, !ff.empty())
	}
}

// maxDeadPage is the admin API's largest page (queue.MaxDeadPage).
const maxDeadPage = 1000

// listDeadLetters prints up to limit dead letters (0: all), fetching
// pages and printing each as it comes.
func listDeadLetters(ctx context.Context, client *adminClient, w io.Writer, q url.Values, cursor string, limit int, filtered bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRULE\tACTION\tATTEMPTS\tLAST ATTEMPT\tLAST ERROR")
	shown, total := 0, 0
	for {
		page := maxDeadPage
		if limit > 0 {
			page = min(limit-shown, maxDeadPage)
		}
		q.Set("limit", strconv.Itoa(page))
		q.Set("cursor", cursor)
		raw, err := client.call(ctx, http.MethodGet, "/dlq?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		out, err := decodeAnswer[admin.DeadLetterList](raw, "/dlq")
		if err != nil {
			return err
		}
		for _, d := range out.DeadLetters {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Rule, d.Action, d.Attempts,
				d.LastAttempt.Format(time.RFC3339), oneLine(d.LastError, 100))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		shown, total, cursor = shown+len(out.DeadLetters), out.Total, out.Next
		if cursor == "" || limit > 0 && shown >= limit {
			break
		}
	}
	var err error
	switch {
	case cursor != "":
		_, err = fmt.Fprintf(w, "%d shown of %d dead letters; more with --cursor %s (or --limit 0 for every one)\n", shown, total, cursor)
	case filtered:
		_, err = fmt.Fprintf(w, "%d dead letters match, of %d\n", shown, total)
	default:
		_, err = fmt.Fprintf(w, "%d dead letters\n", shown)
	}
	return err
}

// deadFilterFlags are the filters dlq list, replay and drop share; the
// server reads them (GET /dlq's parameters, the body's "filter").
type deadFilterFlags struct {
	rule, kind, errText, since, until *string
}

func addDeadFilterFlags(fs *flag.FlagSet) deadFilterFlags {
	return deadFilterFlags{
		rule:    fs.String("rule", "", "only the dead letters of this rule"),
		kind:    fs.String("kind", "", "only those of this action kind (webhook, im.send, …)"),
		errText: fs.String("error", "", "only those whose last error contains this (any case)"),
		since:   fs.String("since", "", "only those dead at or after: an RFC 3339 time, or a duration ago (1h)"),
		until:   fs.String("until", "", "only those dead before: an RFC 3339 time, or a duration ago"),
	}
}

func (f deadFilterFlags) json() admin.DeadFilterJSON {
	return admin.DeadFilterJSON{Rule: *f.rule, Kind: *f.kind, Error: *f.errText, Since: *f.since, Until: *f.until}
}

func (f deadFilterFlags) empty() bool { return f.json() == admin.DeadFilterJSON{} }

func (f deadFilterFlags) query() url.Values {
	v := url.Values{}
	j := f.json()
	for k, s := range map[string]string{"rule": j.Rule, "kind": j.Kind, "error": j.Error, "since": j.Since, "until": j.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// dlqShowCommand prints one dead letter: the job, each attempt's error and
// the event, with secret parameters redacted.
func dlqShowCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("dlq show takes one job id")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		d, err := answer[admin.DeadLetterDetail](ctx, client, asJSON, inv.stdout, http.MethodGet, "/dlq/"+url.PathEscape(inv.args[0]), nil)
		if d == nil || err != nil {
			return err
		}
		return showDeadLetter(inv.stdout, d)
	}
}

// showDeadLetter prints GET /dlq/{id}'s answer for people.
func showDeadLetter(w io.Writer, d *admin.DeadLetterDetail) error {
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

// dlqMoveCommand replays or drops dead letters (sub is replay or drop):
// by id, by filter, or every one.
func dlqMoveCommand(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		af := addAdminFlags(fs)
		ff := addDeadFilterFlags(fs)
		all := fs.Bool("all", false, sub+" every dead letter")
		dryRun := fs.Bool("dry-run", false, "say how many it would "+sub+", and do nothing")
		yes := fs.Bool("yes", false, "drop by filter or --all without asking (needed when stdin is not a terminal)")
		return func(ctx context.Context, inv *invocation) error {
			ids := inv.args
			bulk := *all || !ff.empty()
			switch {
			case len(ids) == 0 && !bulk:
				return usagef("dlq %s needs job ids, a filter (--rule, --kind, --error, --since, --until) or --all", sub)
			case len(ids) > 0 && bulk:
				return usagef("dlq %s takes job ids, or a filter or --all, not both", sub)
			case *all && !ff.empty():
				return usagef("dlq %s takes a filter or --all, not both", sub)
			case len(ids) > 0 && *dryRun:
				return usagef("--dry-run goes with a filter or --all")
			}
			client, err := af.client(inv.cmdline)
			if err != nil {
				return err
			}
			past := map[string]string{"replay": "replayed", "drop": "dropped"}[sub]
			if len(ids) > 0 {
				out, err := client.move(ctx, sub, admin.DeadLetterSelection{IDs: ids})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(inv.stdout, "%d %s\n", out.Count(), past)
				return err
			}
			m := &deadMover{client: client, sub: sub, past: past, stderr: inv.stderr}
			if ff.empty() {
				m.req.All = true
			} else {
				f := ff.json()
				m.req.Filter = &f
			}
			return m.run(ctx, inv, *dryRun, sub == "drop" && !*yes)
		}
	}
}

// deadMover replays or drops by filter (or all) in steps of moveStep,
// reporting progress on stderr between steps.
type deadMover struct {
	client    *adminClient
	sub, past string
	req       admin.DeadLetterSelection
	stderr    io.Writer
}

const moveStep = 1000

// step sends one request; limit 0 is one request for everything.
func (m *deadMover) step(ctx context.Context, dryRun bool, cursor string, limit int) (n int, next string, err error) {
	req := m.req
	req.DryRun, req.Cursor, req.Limit = dryRun, cursor, limit
	out, err := m.client.move(ctx, m.sub, req)
	if err != nil {
		return 0, "", err
	}
	return out.Count(), out.Next, nil
}

// count is how many dead letters the move would act on, counted in
// steps that each read a bounded part of the store (a drop of every one
// is counted at once, from the store's state).
func (m *deadMover) count(ctx context.Context) (int, error) {
	everything := m.req.All
	if m.sub == "drop" && everything {
		n, _, err := m.step(ctx, true, "", 0)
		return n, err
	}
	total, cursor := 0, ""
	for {
		n, next, err := m.step(ctx, true, cursor, math.MaxInt32)
		if err != nil {
			return 0, err
		}
		total += n
		if cursor = next; cursor == "" {
			return total, nil
		}
	}
}

func (m *deadMover) run(ctx context.Context, inv *invocation, dryRun, ask bool) error {
	if dryRun || ask {
		n, err := m.count(ctx)
		if err != nil {
			return err
		}
		if dryRun {
			_, err = fmt.Fprintf(inv.stdout, "%d would be %s (dry run)\n", n, m.past)
			return err
		}
		if n == 0 {
			_, err = fmt.Fprintf(inv.stdout, "0 %s\n", m.past)
			return err
		}
		if err := confirm(inv.stderr, fmt.Sprintf("Drop %d dead letters for good?", n)); err != nil {
			return err
		}
	}
	everything := m.req.All
	if m.sub == "drop" && everything {
		// One request: the server purges the stream.
		n, _, err := m.step(ctx, false, "", 0)
		if err == nil {
			_, err = fmt.Fprintf(inv.stdout, "%d %s\n", n, m.past)
		}
		return err
	}
	total, cursor := 0, ""
	for {
		n, next, err := m.step(ctx, false, cursor, moveStep)
		total += n
		if err != nil {
			return fmt.Errorf("after %d %s: %w", total, m.past, err)
		}
		if cursor = next; cursor == "" {
			break
		}
		fmt.Fprintf(m.stderr, "%s %d so far…\n", m.past, total)
	}
	_, err := fmt.Fprintf(inv.stdout, "%d %s\n", total, m.past)
	return err
}

// stdinTerminal is where confirm reads an answer, and whether it is a
// terminal someone can answer on; tests replace it.
var stdinTerminal = defaultStdinTerminal

func defaultStdinTerminal() (io.Reader, bool) {
	fi, err := os.Stdin.Stat()
	return os.Stdin, err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// errNotConfirmed is a bulk drop the user did not confirm.
var errNotConfirmed = errors.New("nothing dropped")

// confirm asks question on a terminal; elsewhere (a script, a pipe) it
// refuses: a bulk drop there needs --yes.
func confirm(stderr io.Writer, question string) error {
	in, tty := stdinTerminal()
	if !tty {
		return usagef("%s stdin is not a terminal to ask on: add --yes", question)
	}
	fmt.Fprintf(stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// move posts a selection to POST /dlq/replay or /dlq/drop (sub).
func (c *adminClient) move(ctx context.Context, sub string, sel admin.DeadLetterSelection) (*admin.DeadLettersMoved, error) {
	body, err := json.Marshal(sel)
	if err != nil {
		return nil, err
	}
	raw, err := c.call(ctx, http.MethodPost, "/dlq/"+sub, body)
	if err != nil {
		return nil, err
	}
	return decodeAnswer[admin.DeadLettersMoved](raw, "/dlq/"+sub)
}
