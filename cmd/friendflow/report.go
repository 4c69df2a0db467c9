package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/friendflow/friendflow/rules"
)

// The output formats of lint, test and explain.
const (
	formatText   = "text"   // for people: file:line:col: message
	formatJSON   = "json"   // for programs: one JSON document
	formatGitHub = "github" // GitHub Actions workflow commands: annotations on the changed lines
)

// declareFormat declares the output flag every printing command takes,
// -o/--output, with its allowed values, and --format, the spelling lint,
// test, explain and backtest had first: one value, the last given wins.
func declareFormat(fs *flag.FlagSet, allowed ...string) *string {
	v := new(string)
	fs.StringVar(v, "output", formatText, "output: "+orList(allowed))
	fs.StringVar(v, "o", formatText, "short for --output")
	fs.StringVar(v, "format", formatText, "the older spelling of --output")
	return v
}

func checkFormat(format string, allowed ...string) error {
	if !slices.Contains(allowed, format) {
		return usagef("--output must be %s, got %q", orList(allowed), format)
	}
	return nil
}

// declareJSONOutput declares the output flags of a command that prints
// text or the admin API's JSON as it came: -o/--output text|json, and
// --json, the spelling it had first. The result says, once the flags are
// parsed, whether to print JSON.
func declareJSONOutput(fs *flag.FlagSet) func() (bool, error) {
	format := declareFormat(fs, formatText, formatJSON)
	old := fs.Bool("json", false, "the older spelling of --output json")
	return func() (bool, error) {
		if err := checkFormat(*format, formatText, formatJSON); err != nil {
			return false, err
		}
		return *old || *format == formatJSON, nil
	}
}

// orList is "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a failed write to stdout has nowhere to be reported
}

// writeProblem prints one problem or warning: as file:line:col: message, or
// as a GitHub Actions annotation of level "error" or "warning".
func writeProblem(w io.Writer, format, level string, p rules.Problem) {
	if format != formatGitHub {
		fmt.Fprintln(w, p.String())
		return
	}
	props := "file=" + escapeProperty(p.File)
	if p.Line > 0 {
		props += fmt.Sprintf(",line=%d,col=%d", p.Line, p.Col)
	}
	if p.Code != "" {
		props += ",title=" + escapeProperty(p.Code)
	}
	fmt.Fprintf(w, "::%s %s::%s\n", level, props, escapeData(p.Msg))
}

// escapeData and escapeProperty escape a workflow command's message and
// property values the way GitHub's own toolkit does, so that a newline or
// a "::" in a message cannot end the command or start another one
// (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands,
// https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts).
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
