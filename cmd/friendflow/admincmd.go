package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/rules"
)

// reloadCommand asks a running instance to reload its rules now, and
// prints every problem as file:line:col: message when they do not load:
// exit 1, the last good rules serving on.
func reloadCommand(fs *flag.FlagSet) runFunc {
	af := addAdminFlags(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("reload takes no argument, got %q", inv.args[0])
		}
		client, err := af.client(inv.cmdline)
		if err != nil {
			return err
		}
		return postReload(ctx, client, inv.stdout, inv.stderr)
	}
}

// postReload asks the server to reload its rules and prints the outcome.
func postReload(ctx context.Context, client *adminClient, stdout, stderr io.Writer) error {
	status, raw, err := client.do(ctx, http.MethodPost, "/reload", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusUnprocessableEntity {
		return &adminError{http.MethodPost, "/reload", status, errorMessage(raw)}
	}
	if status == http.StatusOK {
		res, err := decodeAnswer[admin.Reloaded](raw, "POST /reload")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %d rules loaded, hash %s\n", res.Rules, res.Hash)
		return nil
	}
	res, err := decodeAnswer[admin.ReloadFailed](raw, "POST /reload")
	if err != nil {
		return err
	}
	if len(res.Problems) == 0 {
		fmt.Fprintln(stdout, res.Error)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(stdout, p.String())
	}
	serving := "no rules loaded: not ready"
	if res.ServingHash != "" {
		serving = "the last good rules keep serving, hash " + res.ServingHash
	}
	fmt.Fprintf(stderr, "reload failed: %d problems; %s\n", len(res.Problems), serving)
	return &exitError{1}
}

// rulesCommand prints the rule files and rules a running instance has
// loaded, and how its last reload went.
func rulesCommand(fs *flag.FlagSet) runFunc {
	out := declareAdminOutput(fs)
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("rules takes no argument, got %q", inv.args[0])
		}
		client, asJSON, err := out.open(inv)
		if err != nil {
			return err
		}
		return showRules(ctx, client, asJSON, inv.stdout)
	}
}

func showRules(ctx context.Context, client *adminClient, asJSON bool, stdout io.Writer) error {
	v, err := answer[admin.RulesView](ctx, client, asJSON, stdout, http.MethodGet, "/rules", nil)
	if v == nil || err != nil {
		return err
	}
	printRules(stdout, v)
	return nil
}

func printRules(w io.Writer, v *admin.RulesView) {
	st := v.Status
	if v.Hash == "" {
		fmt.Fprintln(w, "no rules loaded: not ready")
	} else {
		fmt.Fprintf(w, "serving %d rules from %d files, hash %s, loaded %s\n", len(v.Rules), len(v.Files), v.Hash, st.LoadedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "reloads: %d ok, %d failed", st.Reloads, st.Failures)
	if st.LastReason != "" {
		fmt.Fprintf(w, "; last: %s", st.LastReason)
	}
	fmt.Fprintln(w)
	if st.LastError != "" {
		fmt.Fprintf(w, "last reload FAILED at %s:\n", st.LastErrorAt.Format(time.RFC3339))
		for line := range strings.SplitSeq(st.LastError, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if len(v.Files) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tRULES\tSHA256")
		for _, f := range v.Files {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Path, f.Rules, f.Hash)
		}
		_ = tw.Flush()
	}
	if len(v.Rules) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tAT\tON\tSTATE\tACTIONS\tWHEN")
		for _, r := range v.Rules {
			fmt.Fprintf(tw, "%s\t%s:%d\t%s\t%s\t%s\t%s\n", r.Name, r.File, r.Line, strings.Join(r.On, ","),
				ruleState(r), strings.Join(r.Actions, ","), oneLine(r.When, 60))
		}
		_ = tw.Flush()
		for _, r := range v.Rules {
			for _, p := range r.Warnings {
				fmt.Fprintln(w, p.String())
			}
		}
	}
}

func ruleState(r rules.RuleInfo) string {
	switch {
	case !r.Enabled:
		return "disabled"
	case r.Shadow:
		return "shadow"
	}
	return "enabled"
}
