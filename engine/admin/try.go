package admin

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
)

// maxRulesBody bounds a candidate rule set sent to POST /backtest.
const maxRulesBody = 4 << 20

// readRuleFiles reads the candidate rule files of a request body: a tar
// archive (Content-Type application/x-tar) of the files `friendflow lint`
// would read in a directory, JSON {"files":[{"name","data"}]}
// (application/json), or else the body as one YAML file
// (application/yaml: the admin Guard refuses the content types a browser
// may send across origins, text/plain among them).
func readRuleFiles(w http.ResponseWriter, r *http.Request) ([]RuleFile, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRulesBody))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-tar":
		return untar(data)
	case "application/json":
		var req RuleFiles
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, fmt.Errorf(`body must be {"files":[{"name":"x.yaml","data":"…"}]}: %w`, err)
		}
		return req.Files, nil
	}
	return []RuleFile{{Name: "rules.yaml", Data: string(data)}}, nil
}

// untar returns the rule files of a tar archive by base name, as Load
// would pick them from one directory.
func untar(data []byte) ([]RuleFile, error) {
	var out []RuleFile
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar archive: %w", err)
		}
		name := path.Base(h.Name)
		if h.Typeflag != tar.TypeReg || !isRuleFile(name) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("tar archive: %s: %w", h.Name, err)
		}
		out = append(out, RuleFile{Name: name, Data: string(b)})
	}
}

func isRuleFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}

// tryNote: env() must not let whoever posts rules read the server's
// environment, secrets included.
const tryNote = `env("…") reads as empty in a backtest on the server; run "friendflow backtest" locally for your environment`

// tryRules loads files into a scratch directory (never the rules
// directory), runs their tests and backtests them against ring.
func tryRules(files []RuleFile, reg *actions.Registry, ring *record.Ring) *TryResult {
	res := &TryResult{Note: tryNote}
	set, problems := loadCandidate(files, reg)
	if len(problems) > 0 {
		res.Problems = problems
		return res
	}
	// The files were loaded from a scratch directory: name them as sent.
	res.Warnings, res.Tests = set.Warnings(), set.RunTests()
	for i := range res.Warnings {
		res.Warnings[i].File = filepath.Base(res.Warnings[i].File)
	}
	for i := range res.Tests {
		t := &res.Tests[i]
		t.File = filepath.Base(t.File)
		if !t.Pass {
			res.Problems = append(res.Problems, rules.Problem{File: t.File, Line: t.Line, Col: t.Col,
				Msg: fmt.Sprintf("test %q of rule %q failed: %s", t.Test, t.Rule, t.Failure)})
		}
	}
	diff, err := record.Backtest(set, ring.Export())
	if err != nil {
		res.Problems = append(res.Problems, rules.Problem{Msg: err.Error()})
		return res
	}
	res.Diff, res.OK = diff, len(res.Problems) == 0
	return res
}

func loadCandidate(files []RuleFile, reg *actions.Registry) (*rules.Set, []rules.Problem) {
	if len(files) == 0 {
		return nil, []rules.Problem{{File: "(request)", Msg: "no rule files (*.yaml or *.yml)"}}
	}
	dir, err := os.MkdirTemp("", "friendflow-try-")
	if err != nil {
		return nil, []rules.Problem{{File: "(server)", Msg: err.Error()}}
	}
	defer os.RemoveAll(dir)
	seen := map[string]bool{}
	for _, f := range files {
		if f.Name != filepath.Base(f.Name) || !isRuleFile(f.Name) || seen[f.Name] {
			return nil, []rules.Problem{{File: f.Name, Msg: "a file name must be a unique base name ending in .yaml or .yml"}}
		}
		seen[f.Name] = true
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Data), 0o600); err != nil {
			return nil, []rules.Problem{{File: f.Name, Msg: err.Error()}}
		}
	}
	set, err := rules.Load(dir, rules.Options{Registry: reg, SkipTests: true, Getenv: func(string) string { return "" }})
	var le *rules.LoadError
	if errors.As(err, &le) {
		for i := range le.Problems {
			le.Problems[i].File = filepath.Base(le.Problems[i].File)
		}
		return nil, le.Problems
	}
	if err != nil {
		return nil, []rules.Problem{{File: "(server)", Msg: err.Error()}}
	}
	return set, nil
}
