package rules

import (
	"strings"
	"testing"
)

func TestOnceWindowTooShortIsALoadError(t *testing.T) {
	got := problems(t, oneRule(`  - name: r
    once: { key: From_Account, for: 50ms }
    actions: [{log: {}}]
`))
	if len(got) != 1 || !strings.HasPrefix(got[0], `r.yaml:3:37: rule "r": once: for must be at least 1s, got 50ms`) {
		t.Fatalf("problems %q", got)
	}
}
