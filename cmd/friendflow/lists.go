package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// The lists commands join the table at init, as
// completion does, after the commands the table declares.
func init() {
	commands = append(commands,
		&command{name: "lists", args: "[-o text|json]",
			summary: "the operator-managed lists of a running instance: declared, and their sizes",
			example: "friendflow lists --admin-token-file /run/secrets/admin-token",
			flags:   listsCommand},
		&command{name: "lists show", args: "NAME [--contains M] [-o text|json]",
			summary: "the members of a list, one a line, read page by page; --contains says whether one account is in it (exit 1 if not)",
			example: "friendflow lists show spammers > spammers.txt\nfriendflow lists show spammers --contains eve",
			flags:   listsShowCommand},
		&command{name: "lists add", args: "NAME M… [-o text|json]",
			summary: "add accounts to a list; live on every replica within a second",
			example: "friendflow lists add spammers eve mallory",
			flags:   listsChangeCommand("add")},
		&command{name: "lists remove", args: "NAME M… [-o text|json]",
			summary: "remove accounts from a list",
			example: "friendflow lists remove spammers eve",
			flags:   listsChangeCommand("remove")},
		&command{name: "lists import", args: "NAME FILE [--replace] [-o text|json]",
			summary: "add every account of FILE (one a line; - for stdin), streamed, with progress on stderr; --replace makes them the whole list, switched at once when all are written",
			example: "friendflow lists import spammers spammers.txt\nfriendflow lists import spammers spammers.txt --replace",
			flags:   listsImportCommand},
	)
}

func listsCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("lists takes no argument (did you mean lists show %s?)", inv.args[0])
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		v, err := answer[admin.ListsView](ctx, client, asJSON, inv.stdout, http.MethodGet, "/lists", nil)
		if v == nil || err != nil {
			return err
		}
		tw := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LIST\tMEMBERS\tDESCRIPTION")
		for _, l := range v.Lists {
			desc := l.Description
			if !l.Declared {
				desc = "(not declared by the rules)"
			}
			if l.Importing > 0 {
				desc += fmt.Sprintf(" [replace under way: %d written]", l.Importing)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", l.Name, l.Members, desc)
		}
		return tw.Flush()
	}
}

func listsShowCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	contains := fs.String("contains", "", "only say whether this account is in the list (exit 1 if not)")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("lists show needs one list name")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		name := url.PathEscape(inv.args[0])
		if inv.cmdline["contains"] {
			raw, err := client.call(ctx, http.MethodGet, "/lists/"+name+"?contains="+url.QueryEscape(*contains), nil)
			if err != nil {
				return err
			}
			v, err := decodeAnswer[admin.ListContains](raw, "GET /lists/"+name)
			if err != nil {
				return err
			}
			if asJSON {
				_, _ = inv.stdout.Write(raw)
			} else if v.In {
				fmt.Fprintf(inv.stdout, "%s is in %s\n", v.Member, v.List)
			} else {
				fmt.Fprintf(inv.stdout, "%s is not in %s\n", v.Member, v.List)
			}
			if !v.In {
				return &exitError{1}
			}
			return nil
		}
		return showMembers(ctx, client, name, asJSON, inv.stdout)
	}
}

// showMembers prints every member, a page at a time: text one a line,
// json one JSON string a line.
func showMembers(ctx context.Context, client *adminClient, name string, asJSON bool, w io.Writer) error {
	cursor := ""
	for {
		path := "/lists/" + name + "?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		raw, err := client.call(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		p, err := decodeAnswer[admin.ListPage](raw, "GET /lists/"+name)
		if err != nil {
			return err
		}
		for _, m := range p.Members {
			if asJSON {
				b, _ := json.Marshal(m)
				fmt.Fprintf(w, "%s\n", b)
			} else {
				fmt.Fprintln(w, m)
			}
		}
		if p.NextCursor == "" {
			return nil
		}
		cursor = p.NextCursor
	}
}

func listsChangeCommand(op string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		out := declareAdminOutput(fs)
		return func(ctx context.Context, inv *invocation) error {
			if len(inv.args) < 2 {
				return usagef("lists %s needs a list name and at least one account", op)
			}
			client, asJSON, err := out.open(inv)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(admin.ListMembers{Members: inv.args[1:]})
			name := url.PathEscape(inv.args[0])
			raw, err := client.call(ctx, http.MethodPost, "/lists/"+name+"/"+op, body)
			if err != nil {
				return err
			}
			return printChanged(inv.stdout, raw, "POST /lists/"+name+"/"+op, asJSON)
		}
	}
}

// printChanged prints a write's answer: a line of text, or the JSON.
func printChanged(w io.Writer, raw []byte, what string, asJSON bool) error {
	if asJSON {
		_, err := w.Write(raw)
		return err
	}
	v, err := decodeAnswer[admin.ListChanged](raw, what)
	if err != nil {
		return err
	}
	verb := map[string]string{"add": "added to", "remove": "removed from", "replace": "now make up"}[v.Op]
	fmt.Fprintf(w, "%d members %s %s", v.Members, verb, v.List)
	if v.Total >= 0 {
		fmt.Fprintf(w, " (%d in the list)", v.Total)
	}
	fmt.Fprintln(w)
	return nil
}

func listsImportCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	replace := fs.Bool("replace", false, "make the file's accounts the whole list (the rules switch from the old list to the new one when all are written)")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 2 {
			return usagef("lists import needs a list name and a file (- for stdin)")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		in := io.Reader(os.Stdin)
		var size int64
		if inv.args[1] != "-" {
			f, err := os.Open(inv.args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			if fi, err := f.Stat(); err == nil {
				size = fi.Size()
			}
			in = f
		}
		method, path := http.MethodPost, "/lists/"+url.PathEscape(inv.args[0])+"/add"
		if *replace {
			method, path = http.MethodPut, "/lists/"+url.PathEscape(inv.args[0])
		}
		pr := &progressReader{r: in}
		stop := pr.report(inv.stderr, size)
		raw, err := client.stream(ctx, method, path, pr)
		stop()
		if err != nil {
			return err
		}
		return printChanged(inv.stdout, raw, method+" "+path, asJSON)
	}
}

// stream sends body as text, streamed: an import of any size, with no
// time limit but ctx's.
func (c *adminClient) stream(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	// Not text/plain: the admin guard refuses the content types a
	// browser may send across origins without asking first.
	req.Header.Set("Content-Type", "application/octet-stream")
	if len(c.token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	hc := &http.Client{Transport: c.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach friendflow's admin API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &adminError{method, path, resp.StatusCode, errorMessage(raw)}
	}
	return raw, nil
}

// progressReader counts the bytes and lines read through it.
type progressReader struct {
	r            io.Reader
	bytes, lines atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.bytes.Add(int64(n))
	p.lines.Add(int64(strings.Count(string(b[:n]), "\n")))
	return n, err
}

// report writes the progress to w every second until stop is called, and
// a last line then.
func (p *progressReader) report(w io.Writer, size int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	line := func() {
		if size > 0 {
			fmt.Fprintf(w, "sent %d lines, %d%% of %d bytes\n", p.lines.Load(), p.bytes.Load()*100/size, size)
		} else {
			fmt.Fprintf(w, "sent %d lines, %d bytes\n", p.lines.Load(), p.bytes.Load())
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				line()
				return
			case <-t.C:
				line()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// remoteLists answers list() in a backtest against a running instance
// from that instance's lists, one GET /lists/{name}?contains=M per
// member first asked about: the candidate rules see the members the
// recorded events were decided with (as they are now).
type remoteLists struct {
	ctx    context.Context
	client *adminClient
	memo   map[[2]string]bool
}

// errAskEachTime keeps the rules' fast path off remoteLists: each answer
// is a request, which may fail, and the VM reports the failure.
var errAskEachTime = errors.New("remote lists: asked member by member")

func (r *remoteLists) Ready() error { return errAskEachTime }

func (r *remoteLists) Contains(name, member string) (bool, error) {
	if in, ok := r.memo[[2]string{name, member}]; ok {
		return in, nil
	}
	path := "/lists/" + url.PathEscape(name) + "?contains=" + url.QueryEscape(member)
	raw, err := r.client.call(r.ctx, http.MethodGet, path, nil)
	if err != nil {
		return false, err
	}
	v, err := decodeAnswer[admin.ListContains](raw, "GET "+path)
	if err != nil {
		return false, err
	}
	r.memo[[2]string{name, member}] = v.In
	return v.In, nil
}
