// Command friendflow receives Tencent IM friend-relationship callbacks,
// matches them against YAML rules and runs the rules' actions reliably.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/friendflow/friendflow/actions"
)

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = ""
)

const usage = `friendflow — automate what happens when people become friends in Tencent Cloud IM

Usage:
  friendflow serve [flags]                      run the service
  friendflow lint [PATH] [--strict]             validate rule files; every problem as file:line:col,
                                                every warning too (they fail it with --strict)
  friendflow test [PATH]                        run the tests: cases of the rule files
  friendflow explain [PATH] --event FILE [--command CMD]
                                                evaluate a callback body or event against the rules,
                                                without side effects: every rule, matched or not, and why
  friendflow dlq list|show ID|replay ID…|--all|drop ID…|--all [--admin-listen ADDR]
                                                dead letters of a running instance
  friendflow actions                            print the action reference (Markdown)
  friendflow version                            print version, commit and Go version

PATH is a directory of *.yaml/*.yml rule files or one file [./rules].

Run "friendflow COMMAND --help" for a command's flags. Every flag has an
environment twin: --im-secret-key is FRIENDFLOW_IM_SECRET_KEY. Flags win.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code, so tests can
// drive every command.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr, getenv)
	case "lint":
		err = lint(args[1:], stdout, stderr, getenv)
	case "test":
		err = test(args[1:], stdout, stderr, getenv)
	case "explain":
		err = explain(args[1:], stdout, stderr, getenv)
	case "dlq":
		err = dlq(ctx, args[1:], stdout, getenv)
	case "actions":
		fmt.Fprint(stdout, actions.Reference(newRegistry(slog.New(slog.DiscardHandler), nil)))
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "friendflow %s\ncommit %s\n%s %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "friendflow: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "friendflow %s: %s\n", args[0], ue.msg)
		return 2
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "friendflow %s: %v\n", args[0], err)
		return 1
	}
}

// exitError ends a command with a code after it has printed its own output
// (lint and test exit 1 when they found problems).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
