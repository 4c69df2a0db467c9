package rules

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions/builtin"
	"github.com/friendflow/friendflow/rules/imevent"
)

// warnings loads the files, which must load, and returns the set's
// warnings as "base:line:col: warning CODE: msg" lines.
func warnings(t *testing.T, files map[string]string) []string {
	t.Helper()
	dir := writeFiles(t, files)
	s, err := Load(dir, Options{Registry: testRegistry(t)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var out []string
	for _, w := range s.Warnings() {
		out = append(out, strings.TrimPrefix(w.String(), dir+string(filepath.Separator)))
	}
	return out
}

// The four rules of issue 17, each of which passed lint silently.
const issueRules = `rules:
  - name: only-one-spelling
    when: ClientCmd == "friend_response"
  - name: prev-field-on-after
    on: Sns.CallbackFriendAdd
    when: TagName == "x"
  - name: impossible
    when: ForceFlag == 2
  - name: typo-value
    when: ClientCmd == "friend_ad"
`

func TestLintIssueRules(t *testing.T) {
	got := warnings(t, map[string]string{"r.yaml": issueRules})
	want := []string{
		`r.yaml:3:24: warning FF002: rule "only-one-spelling": when: ClientCmd is "friend_response" or "FriendResponse" for the same thing, and ClientCmd == "friend_response" compares one spelling; use ClientCmd in ["friend_response", "FriendResponse"]`,
		`r.yaml:6:11: warning FF003: rule "prev-field-on-after": when: TagName is not carried by Sns.CallbackFriendAdd, so it is always ""; only Sns.CallbackPrevFriendResponse carries it: add it to on or compare another field`,
		`r.yaml:6:11: warning FF004: rule "prev-field-on-after": when: always false on Sns.CallbackFriendAdd, so it never matches; compare fields the on commands carry (docs/rules.md#event-fields), or change on`,
		`r.yaml:8:24: warning FF001: rule "impossible": when: ForceFlag is never 2: Tencent documents 0 or 1`,
		`r.yaml:10:24: warning FF001: rule "typo-value": when: ClientCmd is never "friend_ad": Tencent documents ["friend_add", "FriendAdd", "friend_response", "FriendResponse"]; did you mean "friend_add"?`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLintPositionsAndForms(t *testing.T) {
	cases := []struct {
		name string
		rule string
		want []string // each a prefix of the corresponding warning line
	}{
		{"clean both spellings", `when: ClientCmd in ["friend_response", "FriendResponse"]`, nil},
		{"clean prefix", "on: Sns.CallbackPrevFriendAdd\n    when: AddSource startsWith \"AddSource_Type_A\"", nil},
		{"clean not carried by one of two", "on: [Sns.CallbackPrevFriendAdd, Sns.CallbackPrevFriendResponse]\n    when: TagName == \"x\"", nil},
		{"clean int", `when: ForceFlag == 1 && PairIndex == 0`, nil},
		{"literal true is deliberate", `when: "true"`, nil},
		{"const on the left", `when: '"friend_ad" == ClientCmd'`,
			[]string{`r.yaml:3:12: warning FF001: rule "x": when: ClientCmd is never "friend_ad"`}},
		{"not equal one spelling", `when: ClientCmd != "FriendAdd"`,
			[]string{`r.yaml:3:24: warning FF002: rule "x": when: ClientCmd is "friend_add" or "FriendAdd" for the same thing, and ClientCmd != "FriendAdd" compares one spelling; use ClientCmd not in ["friend_add", "FriendAdd"]`}},
		{"in list", `when: ClientCmd in ["friend_add", "FriendAd"]`,
			[]string{
				`r.yaml:3:24: warning FF002: rule "x": when: ClientCmd is "friend_add" or "FriendAdd" for the same thing, and the list misses "FriendAdd"; add it`,
				`r.yaml:3:39: warning FF001: rule "x": when: ClientCmd is never "FriendAd"`,
			}},
		{"literal block", "on: Sns.CallbackPrevFriendResponse\n    when: |\n      From_Account != \"\" &&\n        ResponseAction == \"Response_Action_Accept\"",
			[]string{`r.yaml:6:27: warning FF001: rule "x": when: ResponseAction is never "Response_Action_Accept"`}},
		{"prefix", "on: Sns.CallbackPrevFriendAdd\n    when: AddSource == \"Android\"",
			[]string{`r.yaml:4:24: warning FF001: rule "x": when: AddSource always starts with "AddSource_Type_", so it is never "Android"`}},
		{"startsWith outside prefix", "on: Sns.CallbackPrevFriendAdd\n    when: AddSource startsWith \"Android\"",
			[]string{`r.yaml:4:32: warning FF001: rule "x": when: AddSource always starts with "AddSource_Type_", so it never starts with "Android"`}},
		{"always true", `when: Remark == "" || From_Account == "a"`,
			[]string{
				`r.yaml:3:11: warning FF003: rule "x": when: Remark is not carried by Sns.CallbackFriendAdd`,
				`r.yaml:3:11: warning FF004: rule "x": when: always true on Sns.CallbackFriendAdd, so it matches every event`,
			}},
		{"constant on every command of on", "on: [Sns.CallbackFriendDelete, Sns.CallbackBlackListAdd]\n    when: ForceFlag == 1 && To_Account != \"\"",
			[]string{
				`r.yaml:4:11: warning FF003: rule "x": when: ForceFlag is not carried by any of Sns.CallbackFriendDelete, Sns.CallbackBlackListAdd`,
				`r.yaml:4:11: warning FF004: rule "x": when: always false on any of Sns.CallbackFriendDelete, Sns.CallbackBlackListAdd`,
			}},
		{"command never in on", "on: Sns.CallbackFriendDelete\n    when: CallbackCommand == \"Sns.CallbackFriendAdd\" && To_Account == \"b\"",
			[]string{`r.yaml:4:11: warning FF004: rule "x": when: always false on Sns.CallbackFriendDelete, so it never matches`}},
		{"command one of on", "on: [Sns.CallbackFriendDelete, Sns.CallbackFriendAdd]\n    when: CallbackCommand == \"Sns.CallbackFriendAdd\" || To_Account == \"b\"", nil},
		{"ignored", "when: ClientCmd == \"friend_add\"\n    lint: {ignore: [FF002]}", nil},
		{"ignore another code", "when: ClientCmd == \"friend_add\"\n    lint: {ignore: [FF004]}",
			[]string{`r.yaml:3:24: warning FF002:`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := warnings(t, oneRule("  - name: x\n    "+c.rule+"\n"))
			if len(got) != len(c.want) {
				t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i, w := range c.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
		})
	}
}

// FF007: im.friend_add on Sns.CallbackFriendAdd needs a when that reads
// Admin_Account in one of its && parts.
func TestLintCallbackLoop(t *testing.T) {
	reg := builtin.Registry(builtin.Deps{})
	add := "\n    actions:\n      - im.friend_add: {from: \"${ To_Account }\", to: [\"${ From_Account }\"]}\n"
	cases := []struct{ name, rule, want string }{
		{"no when", "on: Sns.CallbackFriendAdd", `r.yaml:5:9: warning FF007: rule "x": action 1 (im.friend_add): its own request calls back with Sns.CallbackFriendAdd`},
		{"when without admin", "on: Sns.CallbackFriendAdd\n    when: To_Account == \"official\"", "warning FF007"},
		{"admin only in an or", "on: Sns.CallbackFriendAdd\n    when: Admin_Account == \"\" || To_Account == \"official\"", "warning FF007"},
		{"excluded", "on: Sns.CallbackFriendAdd\n    when: To_Account == \"official\" && Admin_Account == \"\"", ""},
		{"excluded other form", "on: Sns.CallbackFriendAdd\n    when: Admin_Account != \"administrator\"", ""},
		{"excluded by not in", "on: Sns.CallbackFriendAdd\n    when: Admin_Account not in [\"administrator\", \"ops\"] && To_Account != \"\"", ""},
		{"admin read, not compared", "on: Sns.CallbackFriendAdd\n    when: len(Admin_Account) >= 0", "warning FF007"},
		{"other command", "on: Sns.CallbackFriendDelete", ""},
		{"ignored", "on: Sns.CallbackFriendAdd\n    lint: {ignore: [FF007]}", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, oneRule("  - name: x\n    "+c.rule+add))
			s, err := Load(dir, Options{Registry: reg})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got []string
			for _, w := range s.Warnings() {
				got = append(got, strings.TrimPrefix(w.String(), dir+string(filepath.Separator)))
			}
			switch {
			case c.want == "" && len(got) != 0:
				t.Errorf("warnings: %s", strings.Join(got, "\n"))
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Errorf("warnings:\n%s\nwant one containing %s", strings.Join(got, "\n"), c.want)
			}
		})
	}
}

func TestLintIgnoreProblems(t *testing.T) {
	got := problems(t, oneRule("  - name: x\n    when: ClientCmd == \"friend_add\"\n    lint: {ignore: [FF02], allow: 1}\n"))
	want := []string{
		`r.yaml:4:28: rule "x": lint: unknown key "allow" (known: ignore)`,
		`r.yaml:4:21: rule "x": lint: unknown warning code "FF02"; did you mean "FF002"? (known: FF001, FF002, FF003, FF004, FF005, FF006, FF007)`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLintWarningsInRulesAndExplain(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": issueRules})
	infos := s.Rules()
	if len(infos[0].Warnings) != 1 || infos[0].Warnings[0].Code != CodeOneSpelling {
		t.Errorf("Rules()[0].Warnings = %+v", infos[0].Warnings)
	}
	if len(infos[1].Warnings) != 2 {
		t.Errorf("Rules()[1].Warnings = %+v", infos[1].Warnings)
	}
	tr := s.Explain(&imevent.Event{CallbackCommand: imevent.CmdFriendAdd, ClientCmd: "FriendResponse", To_Account: "b"})
	if len(tr[0].Warnings) != 1 || tr[0].Warnings[0].Code != CodeOneSpelling {
		t.Errorf("Explain()[0].Warnings = %+v", tr[0].Warnings)
	}
}

// TestLintExamplesAndFixturesAreClean holds the rule files operators copy
// (examples/rules) and the benchmark's rule set to the checked forms.
func TestLintExamplesAndFixturesAreClean(t *testing.T) {
	reg := builtin.Registry(builtin.Deps{})
	for _, dir := range []string{exampleRules(t), benchRules(t)} {
		s, err := Load(dir, Options{Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range s.Warnings() {
			t.Errorf("%s", w)
		}
	}
}

func TestLintCodesAreDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, c := range lintCodes {
		if !strings.Contains(doc, "| `"+c+"` |") {
			t.Errorf("docs/rules.md has no row for %s in its Lint warnings table", c)
		}
	}
}
