package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"

	"github.com/friendflow/friendflow/engine/admin"
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
