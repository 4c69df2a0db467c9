package admin

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"path/filepath"
	"strings"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
)

// Bounds of a candidate rule set sent to POST /backtest or the console's
// "Try a change", whatever its form (tar, JSON, form fields): the body,
// the files, the bytes of the files together and of one file, and the
// entries of a tar archive (directories and other files included). A tar
// entry is judged by the size its header declares, which for a sparse file
// is its logical size, before any of it is read.
const (
	maxRulesBody      = 4 << 20
	maxCandidateFiles = 256
	maxCandidateBytes = maxRulesBody
	maxTarEntries     = 4 * maxCandidateFiles
)

// readRuleFiles reads the candidate rule files of a request body: a tar
// archive (Content-Type application/x-tar) of the files `friendflow lint`
// would read in a directory, JSON {"files":[{"name","data"}]}
// (application/json), or else the body as one YAML file
// (application/yaml: the admin Guard refuses the content types a browser
// may send across origins, text/plain among them). Nothing is written to
// disk.
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
		return req.Files, checkCandidate(req.Files)
	}
	return []RuleFile{{Name: "rules.yaml", Data: string(data)}}, nil
}

// checkCandidate refuses more files, or more bytes, than a candidate set
// may have.
func checkCandidate(files []RuleFile) error {
	if len(files) > maxCandidateFiles {
		return fmt.Errorf("more than %d rule files", maxCandidateFiles)
	}
	total := 0
	for _, f := range files {
		if len(f.Data) > rules.DefaultMaxFileBytes {
			return fmt.Errorf("%s: larger than %d bytes, the limit of one rule file", f.Name, rules.DefaultMaxFileBytes)
		}
		if total += len(f.Data); total > maxCandidateBytes {
			return fmt.Errorf("the rule files add up to more than %d bytes", maxCandidateBytes)
		}
	}
	return nil
}

// untar returns the rule files of a tar archive by base name, as Load
// would pick them from one directory. Every bound is checked on the
// headers, before an entry is read.
func untar(data []byte) ([]RuleFile, error) {
	var (
		out   []RuleFile
		total int64
	)
	tr := tar.NewReader(bytes.NewReader(data))
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar archive: %w", err)
		}
		if entries == maxTarEntries {
			return nil, fmt.Errorf("tar archive: more than %d entries", maxTarEntries)
		}
		name := path.Base(h.Name)
		if !h.FileInfo().Mode().IsRegular() || !isRuleFile(name) {
			continue // not read: Next skips what is stored of it, not what it claims
		}
		switch {
		case len(out) == maxCandidateFiles:
			return nil, fmt.Errorf("tar archive: more than %d rule files", maxCandidateFiles)
		case h.Size < 0 || h.Size > rules.DefaultMaxFileBytes:
			return nil, fmt.Errorf("tar archive: %s claims %d bytes, more than %d, the limit of one rule file", h.Name, h.Size, rules.DefaultMaxFileBytes)
		case total+h.Size > maxCandidateBytes:
			return nil, fmt.Errorf("tar archive: the rule files add up to more than %d bytes", maxCandidateBytes)
		}
		total += h.Size
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
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

// tryRules loads files from memory (never the rules directory, nor any
// other), runs their tests and backtests them against the recorded events.
func tryRules(ctx context.Context, files []RuleFile, reg *actions.Registry, log *record.Log) *TryResult {
	return tryRulesWith(ctx, files, reg, log, nil)
}

// tryRulesWith is tryRules with list() reading lists: the deployment's,
// so that a candidate is compared with what the recorded events saw
// under the same members.
func tryRulesWith(ctx context.Context, files []RuleFile, reg *actions.Registry, log *record.Log, lists rules.Lists) *TryResult {
	res := &TryResult{Note: tryNote}
	set, problems := loadCandidate(files, reg, lists)
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
	// The events are read a batch at a time: only the diff is held.
	bt := record.NewBacktest(set)
	if err := log.Export(ctx, record.Filter{}, bt.Add); err != nil {
		res.Problems = append(res.Problems, rules.Problem{Msg: err.Error()})
		return res
	}
	res.Diff, res.OK = bt.Diff(), len(res.Problems) == 0
	return res
}

func loadCandidate(files []RuleFile, reg *actions.Registry, lists rules.Lists) (*rules.Set, []rules.Problem) {
	if len(files) == 0 {
		return nil, []rules.Problem{{File: "(request)", Msg: "no rule files (*.yaml or *.yml)"}}
	}
	if err := checkCandidate(files); err != nil {
		return nil, []rules.Problem{{File: "(request)", Msg: err.Error()}}
	}
	mem := make([]rules.File, len(files))
	for i, f := range files {
		mem[i] = rules.File{Name: f.Name, Data: []byte(f.Data)}
	}
	set, err := rules.LoadFiles(mem, rules.Options{Registry: reg, SkipTests: true, Getenv: func(string) string { return "" }, Lists: lists})
	var le *rules.LoadError
	if errors.As(err, &le) {
		return nil, le.Problems
	}
	if err != nil {
		return nil, []rules.Problem{{File: "(server)", Msg: err.Error()}}
	}
	return set, nil
}
