package rules

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
)

// File is one rule file held in memory: a base name ending in .yaml or
// .yml, and its content.
type File struct {
	Name string
	Data []byte
}

// LoadFiles is Load for rule files held in memory, as if they were the
// files of one directory: nothing is written to disk. The size limits of
// Options apply as they do to files on disk; problems name the files by
// their names.
func LoadFiles(files []File, opts Options) (*Set, error) {
	if opts.Registry == nil {
		return nil, errors.New("rules: Options.Registry is required")
	}
	lim := opts.limits()
	if len(files) == 0 {
		return nil, &LoadError{Problems: []Problem{{File: "(files)", Msg: "no rule files (*.yaml or *.yml)"}}}
	}
	srcs := make([]*source, 0, len(files))
	seen := make(map[string]bool, len(files))
	var total int64
	for _, f := range files {
		if f.Name != filepath.Base(f.Name) || strings.ContainsAny(f.Name, `/\`) || !IsRuleFile(f.Name) || seen[f.Name] {
			return nil, &LoadError{Problems: []Problem{{File: f.Name, Msg: "a file name must be a unique base name ending in .yaml or .yml"}}}
		}
		seen[f.Name] = true
		if int64(len(f.Data)) > lim.fileBytes {
			return nil, &LoadError{Problems: []Problem{{File: f.Name, Msg: errTooLarge(lim.fileBytes).Error()}}}
		}
		if total += int64(len(f.Data)); total > lim.setBytes {
			return nil, &LoadError{Problems: []Problem{setTooLarge(f.Name, lim)}}
		}
		srcs = append(srcs, &source{path: f.Name, name: f.Name, data: f.Data})
	}
	// A directory's files load in name order.
	slices.SortFunc(srcs, func(a, b *source) int { return strings.Compare(a.name, b.name) })
	return compileSources(srcs, opts, lim)
}
