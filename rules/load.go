package rules

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	// Lists backs `X in list("NAME")` in Match (Set.Lists): the
	// deployment's lists (engine/state). Nil: every list is empty. Rule
	// tests read their case's lists: instead.
	Lists Lists
	// SkipTests makes Load skip the rules' tests: cases. `friendflow test`
	// uses it to load once and report every case through RunTests; anything
	// that serves rules must leave it false.
	SkipTests bool

	// Limits of the rule files; 0 (or less) takes the Default… constant.
	MaxFileBytes  int64 // size of one rule file: DefaultMaxFileBytes
	MaxSetBytes   int64 // total size of the files of one Load: DefaultMaxSetBytes
	MaxNodes      int   // YAML nodes of one file with its aliases expanded: DefaultMaxNodes
	MaxAliasDepth int   // aliases nested in aliased values: DefaultMaxAliasDepth
	// MaxExpandedBytes bounds the bytes of one file's scalars with its
	// aliases expanded: DefaultMaxExpandedBytes.
	MaxExpandedBytes int

	// Budget of one rule's evaluation for one event (when, once.key and
	// the templates together), and of every evaluation of one callback
	// together (Set.MatchBudget); over it, the rule fails for that event
	// with an error wrapping ErrEvalBudget. 0 takes the default.
	EvalSteps     int  // loop iterations weighted by body size, program runs by size: DefaultEvalSteps
	EvalBytes     int  // strings, lists and ranges built: DefaultEvalBytes
	EvalMemory    uint // expr's memory budget of one run (vm.VM.MemoryBudget): DefaultEvalMemory
	CallbackSteps int  // steps of one callback's evaluations: DefaultCallbackSteps
	CallbackBytes int  // bytes built by one callback's evaluations: DefaultCallbackBytes
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
	lim := opts.limits()
	srcs, problems := readPaths(paths, lim)
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	return compileSources(srcs, opts, lim)
}

// compileSources parses and compiles the rule files read, in order.
func compileSources(srcs []*source, opts Options, lim limits) (*Set, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	l := newLoader(opts.Registry, getenv, lim)
	var all []*rule
	files := make([]FileInfo, 0, len(srcs))
	decoded := make([]decodedFile, len(srcs))
	for i, src := range srcs {
		decoded[i] = l.decodeFile(src)
		l.parseDecls(decoded[i])
	}
	for i, src := range srcs {
		rs := l.parseRules(decoded[i])
		decoded[i] = decodedFile{} // its tree is garbage once its rules are
		all = append(all, rs...)
		sum := sha256.Sum256(src.data)
		files = append(files, FileInfo{Path: src.path, Hash: hex.EncodeToString(sum[:]), Rules: len(rs)})
	}
	for i, r := range all {
		r.idx = i
	}

	l.checkListUses()
	s := newSet(all, files, hashSources(srcs), l.exprOpts, lim)
	s.lists, s.decls = opts.Lists, l.lists
	l.binding.src = opts.Lists
	s.counters = l.counters
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

func setTooLarge(path string, lim limits) Problem {
	return Problem{File: path, Msg: fmt.Sprintf(
		"the rule files add up to more than %s (the limit of one rule set); split the rules over fewer, smaller files or instances", byteSize(lim.setBytes))}
}

// SourceHash returns the hash Load would report as Set.Hash for path (read
// within the default size limits), without parsing anything. The reload
// package's watcher does not use it: it compares Fingerprints, which also
// cover unreadable entries.
func SourceHash(path string) (string, error) {
	srcs, problems := readSources(path, (&Options{}).limits())
	if len(problems) > 0 {
		return "", &LoadError{Problems: problems}
	}
	return hashSources(srcs), nil
}

// readPaths returns the rule files of every path, each file once. The
// set-size limit counts the files of all paths together.
func readPaths(paths []string, lim limits) ([]*source, []Problem) {
	var (
		all      []*source
		problems []Problem
		seen     = make(map[string]bool)
		total    int64
	)
	for _, path := range paths {
		srcs, ps := readSources(path, lim)
		problems = append(problems, ps...)
		for _, s := range srcs {
			if key := filepath.Clean(s.path); !seen[key] {
				seen[key] = true
				all = append(all, s)
				total += int64(len(s.data))
			}
		}
		if total > lim.setBytes {
			return nil, []Problem{setTooLarge(path, lim)}
		}
	}
	return all, problems
}

// IsRuleFile reports whether a directory entry is a rule file, for the
// loader and the reload package's Fingerprint alike: not hidden, extension
// .yaml or .yml in any case.
func IsRuleFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml")
}

// readSources returns the rule files at path sorted by name. No file is
// read past the size limits: a huge file is refused, not loaded.
func readSources(path string, lim limits) ([]*source, []Problem) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, []Problem{{File: path, Msg: ioMsg(err)}}
	}
	if !fi.IsDir() {
		data, p := readRuleFile(path, fi, lim.fileBytes)
		if p != nil {
			return nil, []Problem{*p}
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
		total    int64
	)
	for _, e := range entries { // ReadDir sorts by name
		name := e.Name()
		if !IsRuleFile(name) {
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
		data, p := readRuleFile(full, fi, lim.fileBytes)
		if p != nil {
			problems = append(problems, *p)
			continue
		}
		if total += int64(len(data)); total > lim.setBytes {
			return nil, []Problem{setTooLarge(path, lim)}
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

// readRuleFile reads the rule file at path, whose FileInfo is fi: a
// regular file (reading a FIFO or a device would block the loader, and
// with it every reload, forever) of at most max bytes.
func readRuleFile(path string, fi os.FileInfo, max int64) ([]byte, *Problem) {
	if !fi.Mode().IsRegular() {
		return nil, &Problem{File: path, Msg: "not a regular file"}
	}
	data, err := readLimited(path, max)
	if err != nil {
		return nil, &Problem{File: path, Msg: ioMsg(err)}
	}
	return data, nil
}

// errTooLarge is a rule file over the size limit.
type errTooLarge int64

func (e errTooLarge) Error() string {
	return fmt.Sprintf("file is larger than %s, the limit of one rule file; split it", byteSize(int64(e)))
}

// readLimited reads the file at path, failing without reading it whole when
// it holds more than max bytes (checked while reading too: it may grow
// between the stat and the read).
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		return nil, errTooLarge(max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errTooLarge(max)
	}
	return data, nil
}

// byteSize writes n in MiB or KiB when it is a whole number of them.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
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
