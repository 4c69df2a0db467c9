package main

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine"
	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite the documentation's generated sections")

// The README is the front door; the reference lives under docs/. These
// tests keep the reference equal to what the code declares, so the
// documentation cannot drift.
const (
	readmePath     = "../../README.md"
	actionsPath    = "../../docs/actions.md"    // the generated action reference
	operationsPath = "../../docs/operations.md" // the configuration and metrics tables
)

func TestReadmeActionReference(t *testing.T) {
	raw, err := os.ReadFile(actionsPath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	const begin, end = "<!-- actions:begin -->\n", "<!-- actions:end -->"
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatal("docs/actions.md lacks the actions markers")
	}
	want := actions.Reference(newRegistry(slog.New(slog.DiscardHandler), nil))
	if got := readme[i+len(begin) : j]; got != want {
		if *update {
			readme = readme[:i+len(begin)] + want + readme[j:]
			if err := os.WriteFile(actionsPath, []byte(readme), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("the action reference in docs/actions.md differs from the declarations; run: go test ./cmd/friendflow -run TestReadmeActionReference -update")
	}
}

// docs/actions.md shows the IM error code table as the code holds it.
func TestReadmeIMErrorCodes(t *testing.T) {
	raw, err := os.ReadFile(actionsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	const begin, end = "<!-- im-codes:begin -->\n", "<!-- im-codes:end -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatal("docs/actions.md lacks the im-codes markers")
	}
	if want := im.CodeTable(); doc[i+len(begin):j] != want {
		if *update {
			doc = doc[:i+len(begin)] + want + doc[j:]
			if err := os.WriteFile(actionsPath, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("the IM error code table in docs/actions.md differs from actions/im/codes.go; run: go test ./cmd/friendflow -run TestReadmeIMErrorCodes -update")
	}
}

// docs/operations.md lists the commands as the usage does, from the
// command table.
func TestReadmeCommandList(t *testing.T) {
	raw, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	const begin, end = "<!-- commands:begin -->\n```\n", "```\n<!-- commands:end -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatal("docs/operations.md lacks the commands markers")
	}
	want := commandList("")
	if got := doc[i+len(begin) : j]; got != want {
		if *update {
			doc = doc[:i+len(begin)] + want + doc[j:]
			if err := os.WriteFile(operationsPath, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("the command list in docs/operations.md differs from the command table; run: go test ./cmd/friendflow -run TestReadmeCommandList -update")
	}
}

func TestReadmeConfigurationTable(t *testing.T) {
	raw, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	// Every serve flag, with its env twin, is a row of the table.
	fs := lookupCommand("serve").flagSet()
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !strings.Contains(string(raw), row) {
			t.Errorf("the configuration table in docs/operations.md lacks %s", row)
		}
	})
}

func TestReadmeMetrics(t *testing.T) {
	raw, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	m := engine.NewMetrics("test", "test")
	m.WatchQueue(nil)
	// Vectors without observations do not gather; their descriptions do.
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	descs := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range m.Collectors() {
			c.Describe(descs)
		}
		close(descs)
	}()
	for d := range descs {
		if n := fq.FindStringSubmatch(d.String()); n != nil && strings.HasPrefix(n[1], "friendflow_") {
			names[n[1]] = true
		}
	}
	if len(names) < 15 {
		t.Fatalf("found only %d metrics: %v", len(names), names)
	}
	for n := range names {
		if !strings.Contains(string(raw), "| `"+n+"` |") {
			t.Errorf("the metrics table in docs/operations.md lacks %s", n)
		}
	}
}

func TestReadmeTestCommandIsCIs(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	const cmd = "go test -race -count=1 ./..."
	if !strings.Contains(string(readme), cmd) || !strings.Contains(string(ci), cmd) {
		t.Fatalf("README and .ci/run must both run %q", cmd)
	}
}

// TestReadmeQuickStartIsTwoCommands: the quick start is two commands, the
// service on its defaults (no file to write first, nothing but the rules
// and the SDKAppID given) and the tests; serve accepts the first as written.
func TestReadmeQuickStartIsTwoCommands(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, quick, _ := strings.Cut(string(readme), "## Quick start")
	_, block, _ := strings.Cut(quick, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	for line := range strings.Lines(block) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 2 || cmds[1] != "go test -race -count=1 ./..." {
		t.Fatalf("the quick start runs %q; want two commands, serve and the tests", cmds)
	}
	args, ok := strings.CutPrefix(cmds[0], "go run ./cmd/friendflow serve ")
	if !ok {
		t.Fatalf("the first command %q does not run serve", cmds[0])
	}
	cfg, err := parseServe(strings.Fields(args), func(string) string { return "" })
	if err != nil {
		t.Fatalf("serve refuses the quick start: %v", err)
	}
	if err := rulesPresent(filepath.Join("../..", cfg.Rules)); err != nil {
		t.Fatal(err)
	}
}
