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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code, so tests can
// drive every command.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	name := args[0]
	var err error
	switch {
	case name == "help" || isHelpFlag(name):
		err = help(args[1:], stdout)
	case name == "--version" || name == "-version":
		err = lookupCommand("version").run(ctx, nil, stdout, stderr, getenv)
	default:
		c, rest, ferr := findCommand(args)
		switch {
		case ferr != nil:
			err = ferr
		case c == nil && len(args) == 1: // a group alone: friendflow dlq
			groupHelp(stderr, name)
			return 2
		case c == nil:
			groupHelp(stdout, name)
		default:
			name = c.name
			err = c.run(ctx, rest, stdout, stderr, getenv)
		}
	}
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "friendflow %s: %s\n", name, ue.msg)
		return 2
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "friendflow %s: %v\n", name, err)
		return 1
	}
}

// exitError ends a command with a code after it has printed its own output
// (lint and test exit 1 when they found problems).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// actionsCommand prints the action reference.
func actionsCommand(*flag.FlagSet) runFunc {
	return func(_ context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("unexpected argument %q", inv.args[0])
		}
		_, err := fmt.Fprint(inv.stdout, actions.Reference(newRegistry(slog.New(slog.DiscardHandler), nil)))
		return err
	}
}

// versionCommand prints the version, the commit and the Go version.
func versionCommand(*flag.FlagSet) runFunc {
	return func(_ context.Context, inv *invocation) error {
		_, err := fmt.Fprintf(inv.stdout, "friendflow %s\ncommit %s\n%s %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return err
	}
}

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
