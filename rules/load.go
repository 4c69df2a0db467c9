package rules

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/friendflow/friendflow/actions"
)

// Options configures Load.
type Options struct {
	// Registry holds the known action kinds. Required.
	Registry *actions.Registry
	// Getenv backs the env("NAME") function of expressions. Nil: os.Getenv.
	Getenv func(string) string
	// SkipTests makes Load skip the rules' tests: cases. `friendflow test`
	// uses it to load once and report every case through RunTests; anything
	// that serves rules must leave it false.
	SkipTests bool
}

// Problem is one thing wrong with the rule files. Line and Col are 1-based;
// they are 0 when the problem has no position in a file (an unreadable
// path, a directory without rule files). A problem with a Code is a lint
// warning (see Set.Warnings): the rule still loads.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg"`
}

// String formats the problem as file:line:col: message, the form editors
// and CI annotations understand; a warning reads
// file:line:col: warning CODE: message.
func (p Problem) String() string {
	msg := p.Msg
	if p.Code != "" {
		msg = "warning " + p.Code + ": " + msg
	}
	if p.Line <= 0 {
		return p.File + ": " + msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, msg)
}

// LoadError holds every problem found by one Load, in file order and, within
// a file, in position order.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// source is one rule file as read from disk.
type source struct {
	path string // as Load names it in problems: the directory joined with the name
	name string // base name: the sort key and the hashed name
	data []byte
}

// Load reads the rule files at path, a directory of *.yaml and *.yml files
// (not recursive; dotfiles and dot-directories such as Kubernetes' ..data
// are skipped, symlinks are followed) or a single file, and returns the
// compiled Set. When anything is wrong the error is a *LoadError listing
// every problem and no Set is returned.
func Load(path string, opts Options) (*Set, error) {
	return LoadPaths([]string{path}, opts)
}

// LoadPaths is Load for several paths, each a file or a directory, that
// form one Set: rule names are unique across all of them, and the files
// match in the order given (a directory's in name order). A file named
// twice, directly or through its directory, loads once.
func LoadPaths(paths []string, opts Options) (*Set, error) {
	if opts.Registry == nil {
		return nil, errors.New("rules: Options.Registry is required")
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	srcs, problems := readPaths(paths)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}

	l := newLoader(opts.Registry, getenv)
	var all []*rule
	files := make([]FileInfo, 0, len(srcs))
	for _, src := range srcs {
		rs := l.parseFile(src)
		all = append(all, rs...)
		sum := sha256.Sum256(src.data)
		files = append(files, FileInfo{Path: src.path, Hash: hex.EncodeToString(sum[:]), Rules: len(rs)})
	}
	for i, r := range all {
		r.idx = i
	}

	s := newSet(all, files, hashSources(srcs), l.exprOpts)
	if !opts.SkipTests {
		for _, res := range s.RunTests() {
			if !res.Pass {
				l.problems = append(l.problems, Problem{
					File: res.File, Line: res.Line, Col: res.Col,
					Msg: fmt.Sprintf("test %q of rule %q failed: %s", res.Test, res.Rule, res.Failure),
				})
			}
		}
	}
	if len(l.problems) > 0 {
		return nil, &LoadError{Problems: sortProblems(srcs, l.problems)}
	}
	s.warnings = sortProblems(srcs, l.warnings)
	return s, nil
}

// SourceHash returns the hash Load would report as Set.Hash for path,
// without parsing anything: a cheap way for a watcher to notice that the
// files changed.
func SourceHash(path string) (string, error) {
	srcs, problems := readSources(path)
	if len(problems) > 0 {
		return "", &LoadError{Problems: problems}
	}
	return hashSources(srcs), nil
}

// readPaths returns the rule files of every path, each file once.
func readPaths(paths []string) ([]*source, []Problem) {
	var (
		all      []*source
		problems []Problem
		seen     = make(map[string]bool)
	)
	for _, path := range paths {
		srcs, ps := readSources(path)
		problems = append(problems, ps...)
		for _, s := range srcs {
			if key := filepath.Clean(s.path); !seen[key] {
				seen[key] = true
				all = append(all, s)
			}
		}
	}
	return all, problems
}

// readSources returns the rule files at path sorted by name.
func readSources(path string) ([]*source, []Problem) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: ioMsg(err)}}
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, []Problem{{File: path, Msg: ioMsg(err)}}
		}
		return []*source{{path: path, name: filepath.Base(path), data: data}}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: ioMsg(err)}}
	}
	var (
		srcs     []*source
		problems []Problem
	)
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		ext := strings.ToLower(filepath.Ext(name))
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		full := filepath.Join(path, name)
		// Stat, not the entry's type: ConfigMap files are symlinks into ..data.
		fi, err := os.Stat(full)
		if err != nil {
			problems = append(problems, Problem{File: full, Msg: ioMsg(err)})
			continue
		}
		if fi.IsDir() {
			continue
		}
		if !fi.Mode().IsRegular() {
			// Reading a FIFO or a device would block the loader, and with
			// it every reload, forever.
			problems = append(problems, Problem{File: full, Msg: "not a regular file"})
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil {
			problems = append(problems, Problem{File: full, Msg: ioMsg(err)})
			continue
		}
		srcs = append(srcs, &source{path: full, name: name, data: data})
	}
	if len(problems) == 0 && len(srcs) == 0 {
		// Between the unlink and the create of a `git pull` or a careless
		// copy, the directory can be empty for a moment: never serve that
		// as "no rules". A file holding `rules: []` says so explicitly.
		problems = append(problems, Problem{File: path,
			Msg: "no *.yaml or *.yml files in the directory; refusing to treat it as no rules (write a file with `rules: []` for that)"})
	}
	return srcs, problems
}

func ioMsg(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// hashSources hashes the names and contents of the sorted files, each
// length-prefixed so that no two different file sets hash alike.
func hashSources(srcs []*source) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range srcs {
		binary.BigEndian.PutUint64(n[:], uint64(len(s.name)))
		h.Write(n[:])
		h.Write([]byte(s.name))
		binary.BigEndian.PutUint64(n[:], uint64(len(s.data)))
		h.Write(n[:])
		h.Write(s.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sortProblems orders problems by file (in load order), then position, so
// that lint output reads top to bottom.
func sortProblems(srcs []*source, ps []Problem) []Problem {
	order := make(map[string]int, len(srcs))
	for i, s := range srcs {
		order[s.path] = i
	}
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(order[a.File], order[b.File]),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
		)
	})
	return ps
}
