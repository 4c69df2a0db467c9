// Package examples holds the rule files this repository ships in
// examples/rules, named one by one, so that tests read exactly these: a
// rule file an operator adds to that directory (the quick start serves it)
// can never fail them.
package examples

import (
	"embed"
	"os"
	"path/filepath"
)

// The shipped rule files, listed by name (a pattern would take in any
// file added beside them).
//
//go:embed rules/anti-spam.yaml rules/audit-forced-adds.yaml rules/blacklist-alert.yaml rules/blocklist.yaml rules/first-friend.yaml rules/follows.yaml rules/friend-requests.yaml rules/onboarding.yaml rules/welcome.yaml
var rules embed.FS

// RuleFiles returns the shipped rule files: the name in examples/rules to
// the content.
func RuleFiles() map[string][]byte {
	entries, err := rules.ReadDir("rules")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := rules.ReadFile("rules/" + e.Name())
		if err != nil {
			panic(err)
		}
		out[e.Name()] = b
	}
	return out
}

// CopyRules writes the shipped rule files into dir/rules and returns that
// directory. dir/rules sits where examples/rules does relative to its
// parent, so nothing else changes for a test that used the real one.
func CopyRules(dir string) (string, error) {
	out := filepath.Join(dir, "rules")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	for name, b := range RuleFiles() {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return "", err
		}
	}
	return out, nil
}
