package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// newRegistry registers the built-in action kinds. imc may be nil where no
// IM call can happen (lint, test, explain): the im.* kinds then validate
// but cannot run.
func newRegistry(log *slog.Logger, imc *im.Client) *actions.Registry {
	return builtin.Registry(builtin.Deps{Logger: log, Accounts: imevent.AccountFields(), IM: imc})
}

// defaultRules is where lint, test and explain look without a PATH: serve's
// --rules default.
const defaultRules = "./rules"

// rulePaths returns the PATH arguments of lint, test and explain, or
// ./rules when there are none and it holds rule files.
func rulePaths(args []string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	if fi, err := os.Stat(defaultRules); err == nil && fi.Mode().IsRegular() {
		return []string{defaultRules}, nil
	}
	yaml, _ := filepath.Glob(filepath.Join(defaultRules, "*.yaml"))
	yml, _ := filepath.Glob(filepath.Join(defaultRules, "*.yml"))
	if len(yaml)+len(yml) == 0 {
		return nil, usagef("no PATH given and no rule files in %s (looked for %s/*.yaml and %s/*.yml); give rule files or directories as PATH…",
			defaultRules, defaultRules, defaultRules)
	}
	return []string{defaultRules}, nil
}

// loadPaths loads the rule files of the offline commands. A set that does
// not load is a *rules.LoadError, for the caller to print.
func loadPaths(paths []string, getenv func(string) string, skipTests bool) (*rules.Set, error) {
	return rules.LoadPaths(paths, rules.Options{Registry: newRegistry(slog.New(slog.DiscardHandler), nil), Getenv: getenv, SkipTests: skipTests})
}

// lintCommand loads every file and reports every problem and warning.
// Warnings fail it only with --strict: a rule with a warning still loads
// and serves.
func lintCommand(fs *flag.FlagSet) runFunc {
	strict := fs.Bool("strict", false, "fail (exit 1) on lint warnings too")
	format := declareFormat(fs, formatText, formatJSON, formatGitHub)
	return func(_ context.Context, inv *invocation) error {
		if err := checkFormat(*format, formatText, formatJSON, formatGitHub); err != nil {
			return err
		}
		paths, err := rulePaths(inv.args)
		if err != nil {
			return err
		}
		set, err := loadPaths(paths, inv.getenv, false)
		var le *rules.LoadError
		if err != nil && !errors.As(err, &le) {
			return err
		}
		rep := lintReport{Problems: []rules.Problem{}, Warnings: []rules.Problem{}}
		if le != nil {
			rep.Problems = le.Problems
		} else {
			rep.Rules, rep.Files = set.Len(), len(set.Files())
			rep.Warnings = append(rep.Warnings, set.Warnings()...)
		}
		rep.OK = len(rep.Problems) == 0 && (!*strict || len(rep.Warnings) == 0)
		rep.write(inv.stdout, inv.stderr, *format, *strict)
		if !rep.OK {
			return &exitError{1}
		}
		return nil
	}
}

// lintReport is what lint found; its JSON is `lint --format json`.
type lintReport struct {
	OK       bool            `json:"ok"`
	Rules    int             `json:"rules"`
	Files    int             `json:"files"`
	Problems []rules.Problem `json:"problems"`
	Warnings []rules.Problem `json:"warnings"`
}

func (r *lintReport) write(stdout, stderr io.Writer, format string, strict bool) {
	if format == formatJSON {
		writeJSON(stdout, r)
		return
	}
	for _, p := range r.Problems {
		writeProblem(stdout, format, "error", p)
	}
	warnLevel := "warning"
	if strict {
		warnLevel = "error"
	}
	for _, w := range r.Warnings {
		writeProblem(stdout, format, warnLevel, w)
	}
	switch {
	case len(r.Problems) > 0:
		fmt.Fprintf(stderr, "%d problems\n", len(r.Problems))
	case !r.OK:
		fmt.Fprintf(stderr, "%d warnings (--strict)\n", len(r.Warnings))
	default:
		fmt.Fprintf(stdout, "ok: %d rules in %d files", r.Rules, r.Files)
		if len(r.Warnings) > 0 {
			fmt.Fprintf(stdout, ", %d warnings", len(r.Warnings))
		}
		fmt.Fprintln(stdout)
	}
}

// testCommand runs the tests: cases and reports each.
func testCommand(fs *flag.FlagSet) runFunc {
	runRE := fs.String("run", "", "run only the cases whose RULE/TEST (rule name, slash, case name) matches this regular expression")
	format := declareFormat(fs, formatText, formatJSON, formatGitHub)
	return func(_ context.Context, inv *invocation) error {
		if err := checkFormat(*format, formatText, formatJSON, formatGitHub); err != nil {
			return err
		}
		var keep func(rule, test string) bool
		if *runRE != "" {
			re, err := regexp.Compile(*runRE)
			if err != nil {
				return usagef("--run: %v", err)
			}
			keep = func(rule, test string) bool { return re.MatchString(rule + "/" + test) }
		}
		paths, err := rulePaths(inv.args)
		if err != nil {
			return err
		}
		rep := testReport{Results: []rules.TestResult{}, Problems: []rules.Problem{}}
		set, err := loadPaths(paths, inv.getenv, true)
		var le *rules.LoadError
		switch {
		case errors.As(err, &le):
			rep.Problems = le.Problems
		case err != nil:
			return err
		default:
			rep.Results = append(rep.Results, set.RunTestsMatching(keep)...)
		}
		for _, r := range rep.Results {
			if r.Pass {
				rep.Passed++
			} else {
				rep.Failed++
			}
		}
		rep.OK = len(rep.Problems) == 0 && rep.Failed == 0
		rep.write(inv.stdout, inv.stderr, *format)
		switch {
		case !rep.OK:
			return &exitError{1}
		case keep != nil && len(rep.Results) == 0:
			// A --run that selects nothing is a typo in CI, not a pass.
			return fmt.Errorf("no test case matches --run %q", *runRE)
		}
		return nil
	}
}

// testReport is what test found; its JSON is `test --format json`.
type testReport struct {
	OK       bool               `json:"ok"`
	Passed   int                `json:"passed"`
	Failed   int                `json:"failed"`
	Results  []rules.TestResult `json:"results"`
	Problems []rules.Problem    `json:"problems"` // the rules did not load; no case ran
}

func (r *testReport) write(stdout, stderr io.Writer, format string) {
	if format == formatJSON {
		writeJSON(stdout, r)
		return
	}
	if len(r.Problems) > 0 {
		for _, p := range r.Problems {
			writeProblem(stdout, format, "error", p)
		}
		fmt.Fprintf(stderr, "%d problems: the rules do not load; no test ran\n", len(r.Problems))
		return
	}
	for _, res := range r.Results {
		if res.Pass {
			fmt.Fprintf(stdout, "PASS %s / %s\n", res.Rule, res.Test)
			continue
		}
		if format == formatGitHub {
			writeProblem(stdout, format, "error", rules.Problem{File: res.File, Line: res.Line, Col: res.Col,
				Msg: fmt.Sprintf("test %q of rule %q failed: %s", res.Test, res.Rule, res.Failure)})
			continue
		}
		fmt.Fprintf(stdout, "FAIL %s / %s (%s:%d:%d)\n", res.Rule, res.Test, res.File, res.Line, res.Col)
		for _, line := range strings.Split(strings.TrimRight(res.Failure, "\n"), "\n") {
			fmt.Fprintf(stdout, "     %s\n", line)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", r.Passed, r.Failed)
}

// explainCommand evaluates a callback body (or one event) against the
// rules and prints what each rule made of each event. It has no side
// effects.
func explainCommand(fs *flag.FlagSet) runFunc {
	eventFile := fs.String("event", "", "callback body or event (JSON file, - for stdin) (required)")
	command := fs.String("command", "", "callback command [the body's CallbackCommand, else Sns.CallbackFriendAdd]")
	profilesFile := fs.String("profiles", "", `IM profiles profile() gives, by account (JSON file: {"alice": {"Nick": "Alice", "Custom": {"Level": "gold"}}}); an account not in it has none [none: the templates' fallbacks]`)
	format := declareFormat(fs, formatText, formatJSON)
	af := addAdminFlags(fs)
	live := declareLiveCounters(fs, af,
		"counters the event is counted on top of: empty, or live (a running deployment's, read through --admin-url, never written)")
	liveLists := fs.String("lists", "empty", "what list() reads: empty (every list), or live (a running deployment's lists, asked member by member through --admin-url)")
	return func(ctx context.Context, inv *invocation) error {
		if *eventFile == "" {
			return usagef("explain needs --event FILE (a callback body or one event as JSON)")
		}
		if err := checkFormat(*format, formatText, formatJSON); err != nil {
			return err
		}
		paths, err := rulePaths(inv.args)
		if err != nil {
			return err
		}
		data, err := readInput(*eventFile)
		if err != nil {
			return fmt.Errorf("reading --event: %w", err)
		}
		events, err := imcallback.ParseEvents(data, *command, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", *eventFile, err)
		}
		var lists rules.Lists
		switch *liveLists {
		case "empty":
		case "live":
			client, err := af.client(inv.cmdline)
			if err != nil {
				return err
			}
			lists = &remoteLists{ctx: ctx, client: client, memo: map[[2]string]bool{}}
		default:
			return usagef("--lists: want empty or live, got %q", *liveLists)
		}
		set, err := rules.LoadPaths(paths, rules.Options{Registry: newRegistry(slog.New(slog.DiscardHandler), nil),
			Getenv: inv.getenv, SkipTests: true, Lists: lists})
		if le := (*rules.LoadError)(nil); errors.As(err, &le) {
			return notLoaded(inv, le, "the rules")
		}
		if err != nil {
			return err
		}
		store, err := live(inv)
		if err != nil {
			return err
		}
		profiles, err := readProfiles(*profilesFile)
		if err != nil {
			return err
		}
		out := engine.ExplainWith(ctx, set, events, engine.ExplainOptions{Counters: store, Profiles: profiles})
		if *format == formatJSON {
			writeJSON(inv.stdout, out)
			return nil
		}
		printExplain(inv.stdout, out)
		return nil
	}
}

// notLoaded prints every problem of rules that do not load (what names
// them) and ends the command with exit 1.
func notLoaded(inv *invocation, le *rules.LoadError, what string) error {
	for _, p := range le.Problems {
		fmt.Fprintln(inv.stdout, p.String())
	}
	fmt.Fprintf(inv.stderr, "%d problems: %s do not load\n", len(le.Problems), what)
	return &exitError{1}
}

// readProfiles reads explain's --profiles file ("": none): a JSON object
// of accounts, each with the fields profile() gives. A field profile()
// does not give is refused, so that a misspelt Nick cannot pass for an
// account without one.
func readProfiles(name string) (map[string]actions.Profile, error) {
	if name == "" {
		return nil, nil
	}
	data, err := readInput(name)
	if err != nil {
		return nil, fmt.Errorf("reading --profiles: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var profiles map[string]actions.Profile
	if err := dec.Decode(&profiles); err != nil {
		return nil, fmt.Errorf("--profiles %s: want {account: {%s}}: %w", name, strings.Join(actions.ProfileFields, ", "), err)
	}
	return profiles, nil
}

// readInput reads a file, or stdin for "-".
func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
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
		printCounts(w, ex.Counters)
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
			for _, l := range r.Lists {
				in := fmt.Sprintf("%t", l.In)
				if l.Error != "" {
					in = "error: " + l.Error
				}
				fmt.Fprintf(w, "      list(%q) has %q: %s\n", l.List, l.Member, in)
			}
			if r.Once != nil {
				check := "not checked: no job to store"
				if r.Once.Checked {
					check = "checked before storing the jobs"
				}
				fmt.Fprintf(w, "      once key %q for %s (%s)\n", r.Once.Key, r.Once.For, check)
			}
			for _, a := range r.Actions {
				p, _ := json.Marshal(a.Params)
				delay := ""
				if a.Delay != "" {
					delay = " after " + a.Delay
				}
				if len(a.CancelOn) > 0 {
					delay += " unless the pair sends " + strings.Join(a.CancelOn, " or ") + " first"
				}
				fmt.Fprintf(w, "      → %s%s %s\n", a.Kind, delay, p)
			}
			if r.Error != "" {
				fmt.Fprintf(w, "      error: %s\n", r.Error)
			}
		}
	}
}
