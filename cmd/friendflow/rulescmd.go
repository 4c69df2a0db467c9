package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules"
)

// newRegistry registers every action kind. imc may be nil where no IM call
// can happen (lint, test, explain): im.send then validates but cannot run.
func newRegistry(log *slog.Logger, imc *im.Client) *actions.Registry {
	var reg actions.Registry
	kinds := []actions.Kind{&actions.Log{Logger: log}, &actions.Webhook{}, &actions.Deny{}}
	for _, k := range append(kinds, im.Kinds(imc)...) {
		if err := reg.Register(k); err != nil {
			panic(err) // two built-in kinds with one name: a programming error
		}
	}
	return &reg
}

// rulesPath resolves the PATH argument of lint/test/explain, defaulting to
// --rules' default.
func rulesPath(pos []string, cmd string) (string, error) {
	switch len(pos) {
	case 0:
		return "./rules", nil
	case 1:
		return pos[0], nil
	}
	return "", usagef("%s takes one PATH, got %q", cmd, pos)
}

func rulesFlagSet(name string, stdout io.Writer, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) ([]string, error) {
	fs := newFlagSet(name)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: friendflow %s [PATH] [flags]\n\nPATH is a directory of *.yaml/*.yml rule files or one file [./rules].\n", name)
		if extra != nil {
			fmt.Fprint(stdout, "\nFlags:\n")
			printDefaults(stdout, fs)
		}
	}
	return pos, err
}

// loadRules loads path for the offline commands, printing every problem
// as file:line:col: message; a set that does not load ends the command
// with exit 1.
func loadRules(path string, getenv func(string) string, skipTests bool, stdout, stderr io.Writer, what string) (*rules.Set, error) {
	set, err := rules.Load(path, rules.Options{Registry: newRegistry(slog.New(slog.DiscardHandler), nil), Getenv: getenv, SkipTests: skipTests})
	var le *rules.LoadError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		fmt.Fprintf(stderr, "%d problems%s\n", len(le.Problems), what)
		return nil, &exitError{1}
	}
	return set, err
}

// lint loads every file and prints every problem as file:line:col: message
// and every warning as file:line:col: warning CODE: message. Warnings fail
// it only with --strict: a rule with a warning still loads and serves.
func lint(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var strict bool
	pos, err := rulesFlagSet("lint", stdout, args, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&strict, "strict", false, "fail (exit 1) on lint warnings too")
	})
	if err != nil {
		return err
	}
	path, err := rulesPath(pos, "lint")
	if err != nil {
		return err
	}
	set, err := loadRules(path, getenv, false, stdout, stderr, "")
	if err != nil {
		return err
	}
	warnings := set.Warnings()
	for _, w := range warnings {
		fmt.Fprintln(stdout, w.String())
	}
	if strict && len(warnings) > 0 {
		fmt.Fprintf(stderr, "%d warnings (--strict)\n", len(warnings))
		return &exitError{1}
	}
	fmt.Fprintf(stdout, "ok: %d rules in %d files", set.Len(), len(set.Files()))
	if len(warnings) > 0 {
		fmt.Fprintf(stdout, ", %d warnings", len(warnings))
	}
	fmt.Fprintln(stdout)
	return nil
}

// test runs every tests: case and prints each result.
func test(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	pos, err := rulesFlagSet("test", stdout, args, getenv, nil)
	if err != nil {
		return err
	}
	path, err := rulesPath(pos, "test")
	if err != nil {
		return err
	}
	set, err := loadRules(path, getenv, true, stdout, stderr, ": the rules do not load; no test ran")
	if err != nil {
		return err
	}
	results := set.RunTests()
	failed := 0
	for _, r := range results {
		if r.Pass {
			fmt.Fprintf(stdout, "PASS %s / %s\n", r.Rule, r.Test)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s / %s (%s:%d:%d)\n", r.Rule, r.Test, r.File, r.Line, r.Col)
		for _, line := range strings.Split(strings.TrimRight(r.Failure, "\n"), "\n") {
			fmt.Fprintf(stdout, "     %s\n", line)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return &exitError{1}
	}
	return nil
}

// explain evaluates a callback body (or one event) against the rules and
// prints what each rule made of each event. It has no side effects.
func explain(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var eventFile, command, format string
	pos, err := rulesFlagSet("explain", stdout, args, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&eventFile, "event", "", "callback body or event (JSON file, - for stdin) (required)")
		fs.StringVar(&command, "command", "", "callback command [the body's CallbackCommand, else Sns.CallbackFriendAdd]")
		fs.StringVar(&format, "format", "text", "text or json")
	})
	if err != nil {
		return err
	}
	path, err := rulesPath(pos, "explain")
	if err != nil {
		return err
	}
	if eventFile == "" {
		return usagef("explain needs --event FILE (a callback body or one event as JSON)")
	}
	if format != "text" && format != "json" {
		return usagef("--format must be text or json, got %q", format)
	}
	var data []byte
	if eventFile == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(eventFile)
	}
	if err != nil {
		return fmt.Errorf("reading --event: %w", err)
	}
	events, err := imcallback.ParseEvents(data, command, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", eventFile, err)
	}
	set, err := loadRules(path, getenv, true, stdout, stderr, ": the rules do not load")
	if err != nil {
		return err
	}
	out := engine.Explain(set, events)
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	printExplain(stdout, out)
	return nil
}

func printExplain(w io.Writer, out []engine.EventExplanation) {
	for i, ex := range out {
		e := ex.Event
		fmt.Fprintf(w, "event %d/%d  %s  %s -> %s\n", i+1, len(out), e.CallbackCommand, e.From_Account, e.To_Account)
		if d := ex.Decision; d != nil {
			if d.ResultCode == 0 {
				fmt.Fprintf(w, "  decision: allow %s\n", d.To_Account)
			} else {
				fmt.Fprintf(w, "  decision: deny %s with %d %q (rule %s)\n", d.To_Account, d.ResultCode, d.ResultInfo, ex.DecidedBy)
			}
		}
		for _, r := range ex.Rules {
			mark := map[rules.Status]string{
				rules.StatusMatched: "✓", rules.StatusNotMatched: "✗", rules.StatusNotApplicable: "-",
				rules.StatusDisabled: "○", rules.StatusError: "!",
			}[r.Status]
			shadow := ""
			if r.Shadow {
				shadow = " (shadow)"
			}
			fmt.Fprintf(w, "  %s %s%s  [%s:%d]  %s: %s\n", mark, r.Rule, shadow, r.File, r.Line, r.Status, r.Reason)
			for _, p := range r.Warnings {
				fmt.Fprintf(w, "      warning %s at %d:%d: %s\n", p.Code, p.Line, p.Col, p.Msg)
			}
			if r.Status == rules.StatusNotApplicable {
				continue
			}
			for _, c := range r.Conditions {
				v, _ := json.Marshal(c.Value)
				if c.Error != "" {
					v = []byte("error: " + c.Error)
				}
				fmt.Fprintf(w, "      %-50s = %s\n", c.Expr, v)
			}
			if r.Once != nil {
				fmt.Fprintf(w, "      once key %q for %s\n", r.Once.Key, r.Once.For)
			}
			for _, a := range r.Actions {
				p, _ := json.Marshal(a.Params)
				delay := ""
				if a.Delay != "" {
					delay = " after " + a.Delay
				}
				fmt.Fprintf(w, "      → %s%s %s\n", a.Kind, delay, p)
			}
			if r.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", r.Error)
			}
		}
	}
}
