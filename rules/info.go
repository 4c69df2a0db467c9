package rules

import "slices"

// FileInfo describes one loaded rule file.
type FileInfo struct {
	Path  string `json:"path"`
	Hash  string `json:"hash"` // sha256 of the content, hex
	Rules int    `json:"rules"`
}

// RuleInfo describes one rule for GET /rules. It carries no parameter
// values, so no secret can leak through it.
type RuleInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`
	Line        int      `json:"line"`
	On          []string `json:"on"`
	When        string   `json:"when"`
	Enabled     bool     `json:"enabled"`
	Shadow      bool     `json:"shadow"`
	Actions     []string `json:"actions"` // the action kinds, in order
	// Warnings are the rule's lint warnings; the rule is loaded anyway.
	Warnings []Problem `json:"warnings,omitempty"`
}

// Hash is the sha256 (hex) over the sorted files' names and contents; it
// equals SourceHash of the path the set was loaded from, until the files
// change.
func (s *Set) Hash() string { return s.hash }

// Files lists the loaded files in load order.
func (s *Set) Files() []FileInfo {
	return append([]FileInfo(nil), s.files...)
}

// Rules lists the rules in file order.
func (s *Set) Rules() []RuleInfo {
	out := make([]RuleInfo, len(s.rules))
	for i, r := range s.rules {
		kinds := make([]string, len(r.actions))
		for j, a := range r.actions {
			kinds[j] = a.kind
		}
		out[i] = RuleInfo{
			Name:        r.name,
			Description: r.description,
			File:        r.file,
			Line:        r.line,
			On:          append([]string(nil), r.on...),
			When:        r.whenSrc,
			Enabled:     r.enabled,
			Shadow:      r.shadow,
			Actions:     kinds,
			Warnings:    slices.Clone(r.warnings),
		}
	}
	return out
}
