package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBin runs the command line args in process, as the binary run in dir
// with the test's environment plus env would, and returns its exit code
// and output. Only a dir other than the test's own ("" or ".") starts the
// binary: run is all of main but os.Exit (TestProcessExitCodes holds the
// process to it), and starting the race-built binary costs about a second.
func runBin(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if dir != "" && dir != "." {
		return runIn(t, dir, append(os.Environ(), env...), args...)
	}
	return runHere(args, environ(env, os.Getenv))
}

// runBinary is runBin with only env in the environment, so that no
// FRIENDFLOW_* variable of the test's leaks in.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runHere(args, environ(env, func(string) string { return "" }))
}

// cli runs a command line in process and returns its exit code with
// stdout, stderr appended when it failed.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	code, out, errOut := runBin(t, "", nil, args...)
	if code != 0 {
		out += errOut
	}
	return out, code
}

// runHere runs a command line through run, main's body.
func runHere(args []string, getenv func(string) string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, getenv)
	return code, out.String(), errOut.String()
}

// environ is getenv for env (KEY=value lines) over base.
func environ(env []string, base func(string) string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return base(k)
	}
}

// runIn runs the friendflow binary in dir with the environment environ.
func runIn(t *testing.T, dir string, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env = dir, environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// words splits an example command line as a shell would, for the simple
// quoting the examples use; a redirection ends it.
func words(line string) []string {
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '>' && !quoted:
			return out
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// Every command, each dlq subcommand included, has help through both
// `help CMD` and `CMD --help`, with its flags and an example whose flags
// the command accepts; the usage lists every command.
func TestHelpEveryCommand(t *testing.T) {
	_, usageOut, _ := runBin(t, ".", nil, "help")
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			name := strings.Fields(c.name)
			code, viaHelp, errOut := runBin(t, ".", nil, append([]string{"help"}, name...)...)
			if code != 0 {
				t.Fatalf("help %s: exit %d: %s", c.name, code, errOut)
			}
			code, viaFlag, errOut := runBin(t, ".", nil, append(name, "--help")...)
			if code != 0 || viaFlag != viaHelp {
				t.Fatalf("%s --help: exit %d, differs from help %s:\n%s\n%s", c.name, code, c.name, viaFlag, errOut)
			}
			if !strings.HasPrefix(viaHelp, "Usage: "+c.synopsis()+"\n") || !strings.Contains(viaHelp, "\nExample:\n  friendflow "+c.name) {
				t.Errorf("help %s:\n%s", c.name, viaHelp)
			}
			if !strings.Contains(usageOut, c.synopsis()) {
				t.Errorf("the usage lacks %q", c.synopsis())
			}
			c.flagSet().VisitAll(func(f *flag.Flag) {
				if !strings.Contains(viaHelp, dashes(f.Name)+" ") {
					t.Errorf("help %s lacks --%s", c.name, f.Name)
				}
			})
			for _, line := range strings.Split(c.example, "\n") {
				args := words(line)[1+len(name):]
				if _, _, err := parseArgsFrom(c.flagSet(), args, func(string) string { return "" }); err != nil {
					t.Errorf("example %q: %v", line, err)
				}
			}
		})
	}
	code, out, _ := runBin(t, ".", nil, "dlq", "--help")
	if code != 0 || !strings.Contains(out, "friendflow dlq list") || !strings.Contains(out, "friendflow dlq drop") {
		t.Errorf("dlq --help: exit %d:\n%s", code, out)
	}
	if code, _, errOut := runBin(t, ".", nil, "dlq"); code != 2 || !strings.Contains(errOut, "friendflow dlq replay") {
		t.Errorf("dlq alone: exit %d:\n%s", code, errOut)
	}
}

// TestProcessExitCodes holds the binary to run: the process exits with
// the code run returns (0, 2 for a usage mistake, 1 for a failure) and
// prints what it prints. Every other command-line test calls run in
// process.
func TestProcessExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"help", "lint"}, 0},
		{[]string{"lnt"}, 2},
		{[]string{"lint", filepath.Join(t.TempDir(), "none")}, 1},
	} {
		code, out, errOut := runIn(t, "", []string{"PATH=" + os.Getenv("PATH")}, tt.args...)
		wantCode, wantOut, wantErr := runHere(tt.args, func(string) string { return "" })
		if code != tt.code || code != wantCode || out != wantOut || errOut != wantErr {
			t.Errorf("friendflow %s: the process exits %d, stdout %q, stderr %q; run returns %d, %q, %q; want exit %d",
				strings.Join(tt.args, " "), code, out, errOut, wantCode, wantOut, wantErr, tt.code)
		}
	}
}

// Mistakes on the command line get one line naming the fix.
func TestCommandLineMistakes(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"serve", "--listn", ":8080"}, "unknown flag --listn; did you mean --listen?"},
		{nil, []string{"lint", "--strickt", "rules"}, "unknown flag --strickt; did you mean --strict?"},
		{nil, []string{"dlq", "list", "--jsn"}, "unknown flag --jsn; did you mean --json?"},
		{nil, []string{"send", "--form", "alice"}, "unknown flag --form; did you mean --from?"},
		{nil, []string{"lint", "--zzzzzz"}, "unknown flag --zzzzzz (run with --help for the flags)"},
		{nil, []string{"serve", "--sdkappid", "1", "--callback-max-skew", "60"},
			`invalid value "60" for --callback-max-skew (FRIENDFLOW_CALLBACK_MAX_SKEW): a duration needs a unit: use e.g. 60s`},
		{[]string{"FRIENDFLOW_SHUTDOWN_TIMEOUT=20"}, []string{"serve", "--sdkappid", "1"},
			`invalid value "20" for --shutdown-timeout (FRIENDFLOW_SHUTDOWN_TIMEOUT): a duration needs a unit: use e.g. 20s`},
		{nil, []string{"send", "--timeout", "5"}, "a duration needs a unit: use e.g. 5s"},
		{nil, []string{"serve", "--callback-max-skew", "soon"}, `invalid value "soon" for --callback-max-skew (FRIENDFLOW_CALLBACK_MAX_SKEW): parse error`},
		{nil, []string{"lnt"}, `unknown command "lnt"; did you mean "lint"?`},
		{nil, []string{"dlq", "lst"}, `unknown dlq subcommand "lst"; did you mean "list"? (known: list, show, replay, drop)`},
		{nil, []string{"help", "sned"}, `unknown command "sned"; did you mean "send"?`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := runBin(t, ".", tt.env, tt.args...)
			if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line containing %q", code, errOut, tt.want)
			}
		})
	}
}
