package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/rules"
)

// explain's text says whether a callback would check a rule's once key.
func TestPrintExplainOnceCheck(t *testing.T) {
	trace := func(checked bool) []engine.EventExplanation {
		return []engine.EventExplanation{{Rules: []rules.RuleTrace{{Rule: "welcome", Status: rules.StatusMatched,
			Once: &rules.OnceTrace{Key: "alice|bob", For: "24h0m0s", Checked: checked}}}}}
	}
	var b bytes.Buffer
	printExplain(&b, trace(true))
	if !strings.Contains(b.String(), `once key "alice|bob" for 24h0m0s (checked before storing the jobs)`) {
		t.Errorf("checked key:\n%s", b.String())
	}
	b.Reset()
	printExplain(&b, trace(false))
	if !strings.Contains(b.String(), `once key "alice|bob" for 24h0m0s (not checked: no job to store)`) {
		t.Errorf("unchecked key:\n%s", b.String())
	}
}

// explain's text shows an action's delay and cancel_on.
func TestPrintExplainCancelOn(t *testing.T) {
	var b bytes.Buffer
	printExplain(&b, []engine.EventExplanation{{Rules: []rules.RuleTrace{{Rule: "tip", Status: rules.StatusMatched,
		Actions: []rules.ActionTrace{{Kind: "im.send", Delay: "24h0m0s", CancelOn: []string{"Sns.CallbackFriendDelete"}}}}}}})
	if !strings.Contains(b.String(), "→ im.send after 24h0m0s unless the pair sends Sns.CallbackFriendDelete first") {
		t.Errorf("explain:\n%s", b.String())
	}
}
