package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explain --profiles renders profile() from the file, as a rule test's
// profiles: do; an account not in it has no profile, so the template's
// fallback shows; a field profile() does not give is refused.
func TestExplainProfiles(t *testing.T) {
	dir := t.TempDir()
	rule := `rules:
  - name: welcome
    when: ClientCmd == "friend_add"
    actions:
      - log: { message: 'Hi ${ profile(To_Account).Nick ?? To_Account } (${ profile(To_Account).Custom.Level ?? "none" })' }
`
	ev := `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add","PairList":[` +
		`{"From_Account":"official","To_Account":"alice","Initiator_Account":"official"},` +
		`{"From_Account":"official","To_Account":"bob","Initiator_Account":"official"}]}`
	files := map[string]string{
		"rules/r.yaml":  rule,
		"event.json":    ev,
		"profiles.json": `{"alice": {"Nick": "Alice", "Custom": {"Level": "gold"}}}`,
		"bad.json":      `{"alice": {"Nickname": "Alice"}}`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules, event := filepath.Join(dir, "rules"), filepath.Join(dir, "event.json")

	out, code := cli(t, "explain", rules, "--event", event, "--profiles", filepath.Join(dir, "profiles.json"))
	if code != 0 || !strings.Contains(out, "Hi Alice (gold)") || !strings.Contains(out, "Hi bob (none)") {
		t.Errorf("explain --profiles: exit %d\n%s", code, out)
	}
	out, code = cli(t, "explain", rules, "--event", event)
	if code != 0 || !strings.Contains(out, "Hi alice (none)") {
		t.Errorf("explain without profiles: exit %d\n%s", code, out)
	}
	out, code = cli(t, "explain", rules, "--event", event, "--profiles", filepath.Join(dir, "bad.json"))
	if code == 0 || !strings.Contains(out, `unknown field "Nickname"`) || !strings.Contains(out, "Nick, FaceUrl") {
		t.Errorf("explain with a misspelt profile field: exit %d\n%s", code, out)
	}
}
