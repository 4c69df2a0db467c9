package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/friendflow/friendflow/internal/suggest"
)

// command is one friendflow command, declared once: the dispatcher, the
// top-level usage, `friendflow help CMD` and `friendflow CMD --help` are
// all derived from the commands table.
type command struct {
	name    string // "lint"; a subcommand is "group sub", such as "dlq list"
	args    string // the synopsis after the name: "[PATH…] [--strict]"
	summary string // one line
	example string // command lines, one per line
	// flags declares the command's flags on fs and returns what runs the
	// command once they are parsed.
	flags func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command whose flags are parsed.
type runFunc func(ctx context.Context, inv *invocation) error

// invocation is what a command runs with.
type invocation struct {
	args    []string        // the positional arguments
	cmdline map[string]bool // the flags the command line set (the rest came from env or defaults)
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
}

// commands is the command line, in the order the usage lists it.
var commands = []*command{
	{name: "serve", args: "[flags]", summary: "run the service",
		example: "friendflow serve --sdkappid 1400000000 --rules ./rules --callback-token-file /run/secrets/callback-token",
		flags:   serveCommand},
	{name: "lint", args: "[PATH…] [--strict] [-o text|json|github]",
		summary: "validate rule files; every problem and warning as file:line:col",
		example: "friendflow lint --strict examples/rules/*.yaml\nfriendflow lint -o github rules/",
		flags:   lintCommand},
	{name: "test", args: "[PATH…] [--run REGEX] [-o text|json|github]",
		summary: "run the rule files' tests: cases",
		example: "friendflow test examples/rules\nfriendflow test --run '^welcome-on-accept/' examples/rules",
		flags:   testCommand},
	{name: "fmt", args: "[PATH…] [--check]",
		summary: "rewrite rule files in the one canonical layout, comments and key order kept; --check only names the files that differ",
		example: "friendflow fmt rules/\nfriendflow fmt --check examples/rules",
		flags:   fmtCommand},
	{name: "explain", args: "[PATH…] --event FILE [--command CMD] [--profiles FILE] [--counters live] [--lists live] [-o text|json]",
		summary: "evaluate a callback against the rules, without side effects: every rule, and why",
		example: "friendflow explain examples/rules --event examples/callbacks/friend_add_response.json",
		flags:   explainCommand},
	{name: "send", args: "--url URL --sdkappid N [--callback-token-file F] (--event FILE | --command CMD --from A --to B …)",
		summary: "sign and POST a callback as Tencent IM does; exit 0 only for ActionStatus OK",
		example: "friendflow send --url http://127.0.0.1:8080/callback --sdkappid 1400000000 --callback-token-file token --event examples/callbacks/friend_add.json\n" +
			"friendflow send --url http://127.0.0.1:8080/callback --sdkappid 1400000000 --command Sns.CallbackFriendAdd --from alice --to bob --client-cmd friend_response",
		flags: sendCommand},
	{name: "schema", args: "[--output FILE]",
		summary: "print the JSON Schema (draft 2020-12) of rule files",
		example: "friendflow schema > rules.schema.json",
		flags:   schemaCommand},
	{name: "dlq list", args: "[--rule R] [--kind K] [--error TEXT] [--since T] [--until T] [--limit N] [--cursor C] [--newest] [-o text|json]",
		summary: "list the dead letters of a running instance, a page at a time, filtered",
		example: "friendflow dlq list --admin-url http://127.0.0.1:9090 --admin-token-file /run/secrets/admin-token\nfriendflow dlq list --rule crm --since 1h --limit 0",
		flags:   dlqListCommand},
	{name: "dlq show", args: "ID [-o text|json]", summary: "one dead letter: rule, action, parameters (secrets redacted), each attempt's error, the event",
		example: "friendflow dlq show 16a80b8e4df7240a2d1c5a190229d2d1-0-0-0",
		flags:   dlqShowCommand},
	{name: "dlq replay", args: "ID…|--all|FILTER… [--dry-run]", summary: "queue dead letters again, as new jobs: by id, by filter (the list's), or all; progress on stderr",
		example: "friendflow dlq replay 16a80b8e4df7240a2d1c5a190229d2d1-0-0-0\nfriendflow dlq replay --rule crm --since 1h\nfriendflow dlq replay --all",
		flags:   dlqMoveCommand("replay")},
	{name: "dlq drop", args: "ID…|--all|FILTER… [--dry-run] [--yes]", summary: "delete dead letters for good; by filter or --all it asks on a terminal and needs --yes elsewhere",
		example: "friendflow dlq drop 16a80b8e4df7240a2d1c5a190229d2d1-0-0-0\nfriendflow dlq drop --kind webhook --error 'no such customer' --dry-run\nfriendflow dlq drop --all --yes",
		flags:   dlqMoveCommand("drop")},
	{name: "reload", summary: "reload the rules of a running instance now; every problem as file:line:col, exit 1 if they do not load",
		example: "friendflow reload --admin-token-file /run/secrets/admin-token",
		flags:   reloadCommand},
	{name: "rules", args: "[-o text|json]", summary: "the rule files and rules a running instance serves, and its last reload status",
		example: "friendflow rules --admin-url http://127.0.0.1:9090",
		flags:   rulesCommand},
	{name: "backtest", args: "PATH… [--admin-url URL | --events FILE.jsonl] [--counters empty|live] [-o text|json] [--fail-on-change]",
		summary: "run candidate rules over recorded events, without side effects: what would match, act or decide differently",
		example: "friendflow backtest rules/ --admin-url http://127.0.0.1:9090 --admin-token-file token --fail-on-change\n" +
			"friendflow events export > events.jsonl && friendflow backtest rules/ --events events.jsonl",
		flags: backtestCommand},
	{name: "events list", args: "[--rule R] [--command C] [--account A] [--outcome O] [--since T] [--until T] [--limit N] [--cursor ID] [-o text|json]",
		summary: "the recorded events of the deployment (every replica's), newest first, a page at a time",
		example: "friendflow events list --admin-token-file /run/secrets/admin-token\nfriendflow events list --rule welcome --outcome failed --since 1h",
		flags:   eventsListCommand},
	{name: "events show", args: "ID [-o text|json]", summary: "one recorded event: every rule's outcome, its jobs and what became of them (retries, dead letter, replay)",
		example: "friendflow events show 42",
		flags:   eventsShowCommand},
	{name: "events tail", args: "[FILTER…] [-o text|json]", summary: "follow new events as they are recorded, until interrupted",
		example: "friendflow events tail --outcome denied",
		flags:   eventsTailCommand},
	{name: "events export", args: "[FILTER…]", summary: "the recorded events as JSONL, oldest first, streamed (for backtest --events)",
		example: "friendflow events export --admin-token-file /run/secrets/admin-token > events.jsonl\nfriendflow events export --command Sns.CallbackPrevFriendAdd --since 24h > prev.jsonl",
		flags:   eventsExportCommand},
	{name: "counters get", args: "NAME KEY [-o text|json]",
		summary: "the current count of a counter of a running deployment for one key, inside its window",
		example: "friendflow counters get requests_by_sender alice --admin-url http://127.0.0.1:9090",
		flags:   countersGetCommand},
	{name: "counters top", args: "NAME [--top N] [--scan N] [-o text|json]",
		summary: "the busiest keys of a counter of a running deployment now, from a bounded scan of its most recently counted keys",
		example: "friendflow counters top requests_by_sender --top 10 --admin-url http://127.0.0.1:9090",
		flags:   countersTopCommand},
	{name: "actions", summary: "print the action reference (Markdown)",
		example: "friendflow actions > actions.md",
		flags:   actionsCommand},
	{name: "version", summary: "print version, commit and Go version",
		example: "friendflow version",
		flags:   versionCommand},
}

// findCommand returns the command args name and the arguments after its
// name. A group (dlq) without a subcommand, or with --help, returns a nil
// command and the group's name.
func findCommand(args []string) (*command, []string, error) {
	name := args[0]
	// A name that is both a command and a group (lists, lists show): a
	// subcommand's name wins, anything else is the command's argument.
	if len(args) > 1 {
		if c := lookupCommand(name + " " + args[1]); c != nil {
			return c, args[2:], nil
		}
	}
	if c := lookupCommand(name); c != nil {
		return c, args[1:], nil
	}
	subs := groupCommands(name)
	if len(subs) == 0 {
		return nil, nil, usagef("unknown command %q%s (run \"friendflow help\" for the list)", name, didYouMean(name, topNames()))
	}
	if len(args) < 2 || isHelpFlag(args[1]) {
		return nil, []string{name}, nil
	}
	if c := lookupCommand(name + " " + args[1]); c != nil {
		return c, args[2:], nil
	}
	names := make([]string, len(subs))
	for i, c := range subs {
		names[i] = strings.TrimPrefix(c.name, name+" ")
	}
	if strings.HasPrefix(args[1], "-") {
		return nil, nil, usagef("%s needs a subcommand first: %s", name, strings.Join(names, ", "))
	}
	return nil, nil, usagef("unknown %s subcommand %q%s (known: %s)", name, args[1], didYouMean(args[1], names), strings.Join(names, ", "))
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// groupCommands returns the subcommands of group, such as dlq's.
func groupCommands(group string) []*command {
	var out []*command
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

// topNames are the names a command line starts with: commands and groups.
func topNames() []string {
	var out []string
	for _, c := range commands {
		top, _, _ := strings.Cut(c.name, " ")
		if len(out) == 0 || out[len(out)-1] != top {
			out = append(out, top)
		}
	}
	return append(out, "help")
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// didYouMean is "; did you mean "x"?" for the known word nearest to got,
// or "" when none is near enough to be a typo.
func didYouMean(got string, known []string) string {
	if best := suggest.Closest(got, known, 2); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// run parses c's flags from args and runs it; --help prints c's help.
func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet(c.name)
	runIt := c.flags(fs)
	pos, cmdline, err := parseArgsFrom(fs, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		c.help(stdout)
		return err
	}
	if err != nil {
		return err
	}
	return runIt(ctx, &invocation{args: pos, cmdline: cmdline, stdout: stdout, stderr: stderr, getenv: getenv})
}

// flagSet returns c's flags, declared on a fresh set (help, docs tests).
func (c *command) flagSet() *flag.FlagSet {
	fs := newFlagSet(c.name)
	c.flags(fs)
	return fs
}

func (c *command) synopsis() string {
	return strings.TrimSpace("friendflow " + c.name + " " + c.args)
}

// help writes `friendflow help CMD`: synopsis, summary, flags, example.
func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", c.synopsis(), upperFirst(c.summary))
	if strings.Contains(c.args, "PATH") {
		fmt.Fprint(w, "\n"+pathHelp+"\n")
	}
	fs := c.flagSet()
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		printDefaults(w, fs)
	}
	fmt.Fprint(w, "\nExample:\n")
	for _, line := range strings.Split(c.example, "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

const pathHelp = `PATH is a rule file or a directory of *.yaml/*.yml rule files [./rules]. Several
PATHs load as one rule set: rule names are unique across all of them.`

// usage is the top-level help, listing every command.
func usage() string {
	var b strings.Builder
	b.WriteString("friendflow — automate what happens when people become friends in Tencent Cloud IM\n\nUsage:\n")
	b.WriteString(commandList("  "))
	b.WriteString("\n" + pathHelp + "\n\n")
	b.WriteString(`Run "friendflow help COMMAND" or "friendflow COMMAND --help" for a command's flags
and an example. dlq, reload, rules, backtest and events export call the admin API
of a running instance: --admin-url [http://127.0.0.1:9090] and --admin-token-file
(when serve has one).

Every serve flag has an environment twin: --im-secret-key is
FRIENDFLOW_IM_SECRET_KEY; so do --admin-url and --admin-token-file. Other
flags have none. Flags win.
`)
	return b.String()
}

// commandList lists every command with its summary, each line indented;
// the usage and docs/operations.md show it.
func commandList(indent string) string {
	var b strings.Builder
	listCommands(&b, indent, commands)
	fmt.Fprintf(&b, "%s%s%s\n", indent, pad("friendflow help [COMMAND]"), "this help, or a command's flags and an example")
	return b.String()
}

// usageColumn is where the summaries of the usage start.
const usageColumn = 46

func listCommands(b *strings.Builder, indent string, cs []*command) {
	for _, c := range cs {
		syn := c.synopsis()
		if utf8.RuneCountInString(syn) >= usageColumn {
			fmt.Fprintf(b, "%s%s\n%s%s%s\n", indent, syn, indent, pad(""), c.summary)
			continue
		}
		fmt.Fprintf(b, "%s%s%s\n", indent, pad(syn), c.summary)
	}
}

func pad(s string) string {
	return s + strings.Repeat(" ", max(usageColumn-utf8.RuneCountInString(s), 1))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// groupHelp writes the help of a group of subcommands (friendflow dlq).
func groupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: friendflow %s COMMAND [flags]\n\nCommands:\n", group)
	var b strings.Builder
	listCommands(&b, "  ", groupCommands(group))
	fmt.Fprintf(w, "%s\nRun \"friendflow help %s COMMAND\" for a command's flags and an example.\n", b.String(), group)
}

// help is `friendflow help [COMMAND]`.
func help(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" {
		fmt.Fprint(stdout, usage())
		return nil
	}
	c, _, err := findCommand(args)
	switch {
	case err != nil:
		return err
	case c == nil:
		groupHelp(stdout, args[0])
	default:
		c.help(stdout)
	}
	return nil
}
