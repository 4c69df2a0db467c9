package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A rule failing for every pair of a 500-pair callback writes a burst of
// lines, not 500; the rest are counted, and all 500 failures still are.
func TestRuleErrorLinesAreRateLimited(t *testing.T) {
	h := newHarness(t, `
rules:
  - name: broken
    when: int(From_Account) > 3
    actions:
      - record: { note: "never" }
`, false)
	const pairs = 500
	var b strings.Builder
	b.WriteString(`{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add","PairList":[`)
	for i := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"From_Account":"a%d","To_Account":"b%d","Initiator_Account":"a%d"}`, i, i, i)
	}
	b.WriteString(`]}`)
	cb := newCB(imevent.CmdFriendAdd)
	cb.ID = imcallback.NewID()
	if err := imcallback.Decode([]byte(b.String()), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Handle(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for raw := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		var l struct{ Msg string }
		_ = json.Unmarshal([]byte(raw), &l)
		if l.Msg == "rule failed at run time; counted as no match" {
			lines++
		}
	}
	if lines < 1 || lines > lineBurst+lineRate {
		t.Errorf("%d rule error lines for %d failures; want at most %d", lines, pairs, lineBurst+lineRate)
	}
	out := scrape(t, h.eng.Metrics)
	for _, want := range []string{
		fmt.Sprintf(`friendflow_rule_errors_total{rule="broken"} %d`, pairs),
		fmt.Sprintf(`friendflow_log_lines_suppressed_total{line="engine"} %d`, pairs-lines),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
