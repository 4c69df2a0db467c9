package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryShippedRuleFileIsListed: the rule files git tracks in
// examples/rules are exactly the embedded list, so a newly shipped example
// is tested too. An operator's untracked file is no part of either. Outside
// a git checkout there is nothing to compare against.
func TestEveryShippedRuleFileIsListed(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "--", "rules/*.yaml", "rules/*.yml").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	tracked := strings.Fields(string(out))
	files := RuleFiles()
	if len(tracked) != len(files) {
		t.Errorf("git tracks %d rule files in examples/rules, the list embeds %d: %v", len(tracked), len(files), tracked)
	}
	for _, f := range tracked {
		if _, ok := files[filepath.Base(f)]; !ok {
			t.Errorf("%s is shipped but not in the go:embed list of examples.go", f)
		}
	}
}
