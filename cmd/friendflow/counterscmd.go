package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/rules"
)

// countersGetCommand is `friendflow counters get NAME KEY`: a counter of a
// running deployment for one key, read through GET /counters/{name}/{key}.
func countersGetCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	outputJSON := declareJSONOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 2 {
			return usagef("counters get takes a counter's name and a key, such as: friendflow counters get requests_by_sender alice")
		}
		asJSON, err := outputJSON()
		if err != nil {
			return err
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		path := "/counters/" + url.PathEscape(inv.args[0]) + "/" + url.PathEscape(inv.args[1])
		raw, err := client.call(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		if asJSON {
			_, err := inv.stdout.Write(raw)
			return err
		}
		v, err := decodeAnswer[admin.CounterValue](raw, "GET /counters")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(inv.stdout, "%d\n", v.Count)
		return err
	}
}

// declareLiveCounters declares explain's --counters: empty (counters
// start at zero) or live (the deployment's, read through the admin API,
// never written); the function it returns gives the store to read (nil:
// empty).
func declareLiveCounters(fs *flag.FlagSet) func(*invocation) (rules.CounterStore, error) {
	which := fs.String("counters", "empty", "counters the event is counted on top of: empty, or live (a running deployment's, read through --admin-url, never written)")
	af := addAdminFlags(fs)
	return func(inv *invocation) (rules.CounterStore, error) {
		switch *which {
		case "empty":
			return nil, nil
		case "live":
			client, err := af.client(inv.cmdline)
			if err != nil {
				return nil, err
			}
			return &adminCounters{client}, nil
		}
		return nil, usagef("--counters: want empty or live, got %q", *which)
	}
}

// adminCounters reads a running deployment's counters through GET
// /counters/{name}/{key}; it never counts.
type adminCounters struct{ client *adminClient }

func (a *adminCounters) Get(ctx context.Context, c rules.Counter, key string, _ time.Time) (int, error) {
	raw, err := a.client.call(ctx, http.MethodGet, "/counters/"+url.PathEscape(c.Name)+"/"+url.PathEscape(key), nil)
	if err != nil {
		return 0, err
	}
	v, err := decodeAnswer[admin.CounterValue](raw, "GET /counters")
	if err != nil {
		return 0, err
	}
	return v.Count, nil
}

func (a *adminCounters) Add(context.Context, rules.Counter, string, time.Time) (int, error) {
	return 0, errors.New("explain never counts in a live deployment")
}

// printCounts lists the counter values an explained event used.
func printCounts(w io.Writer, vals []rules.CountValue) {
	for _, v := range vals {
		how := "read"
		if v.Counted {
			how = "this event counted"
		}
		if v.Error != "" {
			fmt.Fprintf(w, "  count(%q, %q): error: %s\n", v.Counter, v.Key, v.Error)
			continue
		}
		fmt.Fprintf(w, "  count(%q, %q) = %d (%s)\n", v.Counter, v.Key, v.Count, how)
	}
}
