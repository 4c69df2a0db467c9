package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The completion command reads the command table, which holds it: it joins
// the table at init to keep the table's initialisation free of a cycle.
func init() {
	commands = append(commands, &command{name: "completion", args: "bash|zsh|fish",
		summary: "print a shell completion script: commands, subcommands and their flags",
		example: "friendflow completion bash > /etc/bash_completion.d/friendflow\nfriendflow completion fish > ~/.config/fish/completions/friendflow.fish",
		flags:   completionCommand})
}

func completionCommand(*flag.FlagSet) runFunc {
	return func(_ context.Context, inv *invocation) error {
		if len(inv.args) != 1 {
			return usagef("completion needs one shell: bash, zsh or fish")
		}
		switch inv.args[0] {
		case "bash":
			writeBashCompletion(inv.stdout, false)
		case "zsh":
			writeBashCompletion(inv.stdout, true)
		case "fish":
			writeFishCompletion(inv.stdout)
		default:
			return usagef("completion: unknown shell %q; bash, zsh or fish", inv.args[0])
		}
		return nil
	}
}

// flagNames are a command's flags as typed: --name.
func flagNames(c *command) []string {
	var out []string
	c.flagSet().VisitAll(func(f *flag.Flag) { out = append(out, dashes(f.Name)) })
	return append(out, "--help")
}

// groups are the commands with subcommands (dlq, events) and those.
func groups() map[string][]string {
	out := map[string][]string{}
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok {
			out[g] = append(out[g], sub)
		}
	}
	return out
}

// writeBashCompletion writes a bash completion function; zsh runs the same
// through its bashcompinit. Arguments that are not flags complete as file
// names (rule files, --event files), bash's default.
func writeBashCompletion(w io.Writer, zsh bool) {
	if zsh {
		fmt.Fprintln(w, "#compdef friendflow\nautoload -U +X bashcompinit && bashcompinit")
	}
	fmt.Fprintln(w, `_friendflow() {
  local cur="${COMP_WORDS[COMP_CWORD]}" cmd="${COMP_WORDS[1]}" flags=""
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "`+strings.Join(topNames(), " ")+`" -- "$cur"))
    return
  fi
  case "$cmd" in`)
	gs := groups()
	names := slices.Sorted(func(yield func(string) bool) {
		for g := range gs {
			if !yield(g) {
				return
			}
		}
	})
	for _, g := range names {
		fmt.Fprintf(w, "  %s)\n    if [ \"$COMP_CWORD\" -eq 2 ]; then\n      COMPREPLY=($(compgen -W %q -- \"$cur\"))\n      return\n    fi\n    cmd=\"$cmd ${COMP_WORDS[2]}\";;\n",
			g, strings.Join(gs[g], " "))
	}
	fmt.Fprintln(w, "  esac\n  case \"$cmd\" in")
	fmt.Fprintln(w, `  help) COMPREPLY=($(compgen -W "`+strings.Join(topNames(), " ")+`" -- "$cur")); return;;
  completion) [[ "$cur" == -* ]] || COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return;;`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %q) flags=%q;;\n", c.name, strings.Join(flagNames(c), " "))
	}
	fmt.Fprintln(w, `  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _friendflow friendflow`)
}

// writeFishCompletion writes fish completions: the commands, then each
// command's flags with their usage as the description.
func writeFishCompletion(w io.Writer) {
	fmt.Fprintln(w, "complete -c friendflow -f -n __fish_use_subcommand -a help -d 'help on a command'")
	seen := map[string]bool{}
	for _, c := range commands {
		g, sub, isSub := strings.Cut(c.name, " ")
		cond := "__fish_seen_subcommand_from " + c.name
		if isSub {
			if !seen[g] {
				seen[g] = true
				fmt.Fprintf(w, "complete -c friendflow -f -n __fish_use_subcommand -a %s -d %s\n", g, fishQuote(g+" commands"))
			}
			fmt.Fprintf(w, "complete -c friendflow -f -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %s\n",
				g, strings.Join(groups()[g], " "), sub, fishQuote(c.summary))
			cond = "__fish_seen_subcommand_from " + g + "; and __fish_seen_subcommand_from " + sub
		} else {
			fmt.Fprintf(w, "complete -c friendflow -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
		}
		c.flagSet().VisitAll(func(f *flag.Flag) {
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-s " + f.Name
			}
			fmt.Fprintf(w, "complete -c friendflow -n '%s' %s -d %s\n", cond, opt, fishQuote(f.Usage))
		})
	}
	fmt.Fprintln(w, "complete -c friendflow -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
}

// fishQuote single-quotes s for fish, where only \ and ' are special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
