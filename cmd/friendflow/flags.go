package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/internal/suggest"
)

// usageError is a bad command line or configuration: one line, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// envName is a flag's environment twin: --im-secret-key ⇔ FRIENDFLOW_IM_SECRET_KEY.
func envName(flagName string) string {
	return "FRIENDFLOW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagRef names a flag and its env twin, the way every configuration error
// must: the operator may have set either.
func flagRef(name string) string { return fmt.Sprintf("--%s (%s)", name, envName(name)) }

// newFlagSet returns a FlagSet that reports errors to us instead of printing.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgsFrom parses flags that may stand before or after positional
// arguments (`explain rules/ --event cb.json` and `explain --event cb.json
// rules/` both work), then fills every flag not given on the command line
// that has an environment twin (hasEnvTwin) from it. Flags win over env.
// It returns the positional arguments and which flags the command line set.
func parseArgsFrom(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, map[string]bool, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, usagef("%s", flagError(fs, err))
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || !hasEnvTwin(fs, f.Name) {
			return
		}
		v, ok := lookupEnv(getenv, envName(f.Name))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usagef("invalid value %q for %s: %s", v, flagRef(f.Name), cmp.Or(valueHint(fs, f.Name, v), e.Error()))
		}
	})
	return positional, set, err
}

// hasEnvTwin says whether a flag is filled from its environment twin:
// every flag of serve (a service is configured through its environment),
// and the admin client's address and token, which a `kubectl exec` into
// the container then finds where serve found them. One-off and destructive
// flags never are: FRIENDFLOW_ALL must not make `dlq drop` drop everything.
func hasEnvTwin(fs *flag.FlagSet, name string) bool {
	return fs.Name() == "serve" || adminClientFlags[name]
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(name)
	}
	v := getenv(name)
	return v, v != ""
}

// flagError rewrites the flag package's messages so they name the env
// twin, suggest the nearest flag for an unknown one and say how to write a
// duration.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	// "invalid value "x" for flag -name: parse error"
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		rest := msg[i+len(" for flag -"):]
		if j := strings.Index(rest, ":"); j >= 0 {
			name, why := rest[:j], rest[j+1:]
			if v, uerr := strconv.Unquote(strings.TrimPrefix(msg[:i], "invalid value ")); uerr == nil {
				if hint := valueHint(fs, name, v); hint != "" {
					why = " " + hint
				}
			}
			return fmt.Sprintf("%s for %s:%s", msg[:i], flagRef(name), why)
		}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var known []string
		fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
		if best := suggest.Closest(name, known, 2); best != "" {
			return fmt.Sprintf("unknown flag --%s; did you mean --%s?", name, best)
		}
		return fmt.Sprintf("unknown flag --%s (run with --help for the flags)", name)
	}
	return msg
}

// valueHint says how to write a value the flag refused, where a common
// mistake has one answer: a duration given as a bare number of seconds.
// It is "" for other mistakes.
func valueHint(fs *flag.FlagSet, name, value string) string {
	f := fs.Lookup(name)
	if f == nil {
		return ""
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	if _, isDuration := g.Get().(time.Duration); !isDuration {
		return ""
	}
	if _, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
		return ""
	}
	return fmt.Sprintf("a duration needs a unit: use e.g. %ss", strings.TrimSpace(value))
}

// printDefaults writes the flags with their env twins and defaults.
// dashes is a flag as typed: -o for a one-letter flag, --name otherwise
// (Go's flag package takes either for both).
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			def = fmt.Sprintf(" [%s]", f.DefValue)
		}
		fmt.Fprintf(w, "  %-24s %s%s\n", dashes(f.Name), f.Usage, def)
		if hasEnvTwin(fs, f.Name) {
			fmt.Fprintf(w, "  %-24s env %s\n", "", envName(f.Name))
		}
	})
}

// secretValue is a flag holding a secret: its String never shows the value,
// so neither usage output nor a stray %v can leak it.
type secretValue struct{ v []byte }

func (s *secretValue) String() string {
	if s == nil || len(s.v) == 0 {
		return ""
	}
	return "<redacted>"
}

func (s *secretValue) Set(v string) error { s.v = []byte(v); return nil }

// readSecret resolves a secret given directly or as a file (Kubernetes
// mounts Secrets as files). Both on the command line, or both from env, is
// ambiguous and an error; otherwise the command line wins, as for every
// flag.
func readSecret(name string, direct *secretValue, file string, cmdline map[string]bool) ([]byte, error) {
	if len(direct.v) > 0 && file != "" {
		switch {
		case cmdline[name] && !cmdline[name+"-file"]:
			return direct.v, nil
		case cmdline[name+"-file"] && !cmdline[name]:
			direct.v = nil
		default:
			return nil, usagef("%s and %s are both set; use one", flagRef(name), flagRef(name+"-file"))
		}
	}
	if file == "" {
		return direct.v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("%s: %v", flagRef(name+"-file"), err)
	}
	// Files written by editors and `echo` end in a newline that is no part
	// of the secret.
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return nil, usagef("%s: file %s is empty", flagRef(name+"-file"), file)
	}
	return []byte(s), nil
}

func positiveDuration(name string, d time.Duration) error {
	if d <= 0 {
		return usagef("%s must be a positive duration, got %s", flagRef(name), d)
	}
	return nil
}

// byteSize is a flag holding a size in bytes, written with an optional
// binary or decimal unit: 268435456, 256MiB, 1GiB, 500MB.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func (b byteSize) String() string {
	for i := 3; i >= 0; i-- { // the largest binary unit that divides it
		if u := sizeUnits[i]; b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func (b *byteSize) Set(s string) error {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a size such as 268435456, 256MiB or 1GiB")
	}
	*b = byteSize(n * mult)
	return nil
}
