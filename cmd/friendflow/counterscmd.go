package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/rules"
)

// countersGetCommand is `friendflow counters get NAME KEY`: a counter of a
// running deployment for one key, read through GET /counters/{name}/{key}.
func countersGetCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 2 {
			return usagef("counters get takes a counter's name and a key, such as: friendflow counters get requests_by_sender alice")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		path := "/counters/" + url.PathEscape(inv.args[0]) + "/" + url.PathEscape(inv.args[1])
		v, err := answer[admin.CounterValue](ctx, client, asJSON, inv.stdout, http.MethodGet, path, nil)
		if v == nil || err != nil {
			return err
		}
		_, err = fmt.Fprintf(inv.stdout, "%d\n", v.Count)
		return err
	}
}

// countersTopCommand is `friendflow counters top NAME`: the busiest keys
// of a counter of a running deployment, through GET /counters/{name}.
func countersTopCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	top := fs.Int("top", admin.DefaultTop, "how many keys to show (at most 100)")
	scan := fs.Int("scan", 0, "examine at most this many keys of the counter's bucket, the most recently counted [the server's default, 10000; at most 100000]")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("counters top takes a counter's name, such as: friendflow counters top requests_by_sender")
		}
		if *top <= 0 || *scan < 0 {
			return usagef("--top must be positive and --scan not negative")
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		q := url.Values{"top": {strconv.Itoa(*top)}}
		if *scan > 0 {
			q.Set("scan", strconv.Itoa(*scan))
		}
		v, err := answer[admin.CounterTop](ctx, client, asJSON, inv.stdout, http.MethodGet, "/counters/"+url.PathEscape(inv.args[0])+"?"+q.Encode(), nil)
		if v == nil || err != nil {
			return err
		}
		printTop(inv.stdout, v)
		return nil
	}
}

// printTop prints a counter's busiest keys, a count and a key a line
// (a hashed key as sha256:HEX), then what the scan examined on stderr's
// side of the reader: a last line starting with "#".
func printTop(w io.Writer, v *admin.CounterTop) {
	for _, k := range v.Keys {
		key := strconv.Quote(k.Key)
		if k.Hashed {
			key = "sha256:" + k.Key
		}
		fmt.Fprintf(w, "%d\t%s\n", k.Count, key)
	}
	if v.Cut {
		fmt.Fprintf(w, "# %s, window %s: scan cut, examined the %d most recently counted of %d keys\n", v.Counter, v.Window, v.Examined, v.Total)
	} else {
		fmt.Fprintf(w, "# %s, window %s: examined all %d keys\n", v.Counter, v.Window, v.Examined)
	}
}

// declareLiveCounters declares --counters (explain's, backtest's): empty
// (counters start at zero) or live (the deployment af names, read through
// its admin API, never written); the function it returns gives the store
// to read (nil: empty).
func declareLiveCounters(fs *flag.FlagSet, af *adminFlags, usage string) func(*invocation) (rules.CounterStore, error) {
	which := fs.String("counters", "empty", usage)
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
	return 0, errors.New("explain and backtest never count in a live deployment")
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
