package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
)

// The dlq commands operate on the dead letters of a running instance
// through its admin API, so they work the same against the embedded store
// and a cluster.

// adminTarget is the running instance a command talks to.
type adminTarget struct{ addr string }

// declareAdmin declares the flags that name the running instance.
func declareAdmin(fs *flag.FlagSet) *adminTarget {
	t := new(adminTarget)
	fs.StringVar(&t.addr, "admin-listen", "127.0.0.1:9090", "admin address of the running friendflow")
	return t
}

// base is the admin API's base URL.
func (t *adminTarget) base() string {
	if strings.HasPrefix(t.addr, "http://") || strings.HasPrefix(t.addr, "https://") {
		return t.addr
	}
	return "http://" + t.addr
}

func (t *adminTarget) client() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// dlqListCommand lists the dead letters.
func dlqListCommand(fs *flag.FlagSet) runFunc {
	target := declareAdmin(fs)
	asJSON := fs.Bool("json", false, "print the admin API's JSON")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("dlq list takes no ids")
		}
		raw, err := call(ctx, target.client(), http.MethodGet, target.base()+"/dlq", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := inv.stdout.Write(raw)
			return err
		}
		var out struct {
			DeadLetters []admin.DeadLetterView `json:"dead_letters"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("reading /dlq: %w", err)
		}
		return printDeadLetters(inv.stdout, out.DeadLetters)
	}
}

func printDeadLetters(w io.Writer, dls []admin.DeadLetterView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRULE\tACTION\tATTEMPTS\tLAST ATTEMPT\tLAST ERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Rule, d.Action, d.Attempts,
			d.LastAttempt.Format(time.RFC3339), oneLine(d.LastError, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letters\n", len(dls))
	return err
}

// dlqMoveCommand replays or drops dead letters (sub is replay or drop).
func dlqMoveCommand(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		target := declareAdmin(fs)
		all := fs.Bool("all", false, sub+" every dead letter")
		return func(ctx context.Context, inv *invocation) error {
			ids := inv.args
			if len(ids) == 0 && !*all {
				return usagef("dlq %s needs job ids or --all", sub)
			}
			if len(ids) > 0 && *all {
				return usagef("dlq %s takes job ids or --all, not both", sub)
			}
			body, _ := json.Marshal(map[string]any{"ids": ids, "all": *all})
			raw, err := call(ctx, target.client(), http.MethodPost, target.base()+"/dlq/"+sub, body)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("reading /dlq/%s: %w", sub, err)
			}
			past := map[string]string{"replay": "replayed", "drop": "dropped"}[sub]
			_, err = fmt.Fprintf(inv.stdout, "%v %s\n", out[past], past)
			return err
		}
	}
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
