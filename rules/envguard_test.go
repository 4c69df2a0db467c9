package rules

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

const secretValue = "s3cret-im-key-7d1f"

func secretEnv(name string) string {
	if strings.HasPrefix(strings.ToUpper(name), "FRIENDFLOW_") {
		return secretValue
	}
	return "plain"
}

// env() of friendflow's own variables is a load error where the name is
// written.
func TestEnvDeniedAtLoad(t *testing.T) {
	dir := writeFiles(t, oneRule(`
  - name: a
    when: env("FRIENDFLOW_IM_SECRET_KEY") != ""
  - name: b
    actions: [{log: {message: 'key ${ env("friendflow_callback_token") }'}}]
  - name: c
    once: {key: 'env("HOME") + env("FRIENDFLOW_X")'}
`))
	_, err := Load(dir, Options{Registry: testRegistry(t), Getenv: secretEnv})
	if err == nil {
		t.Fatal("loaded")
	}
	got := strings.ReplaceAll(err.Error(), dir+"/", "")
	for _, want := range []string{
		`r.yaml:4:15: rule "a": when: env("FRIENDFLOW_IM_SECRET_KEY"): rules cannot read FRIENDFLOW_* variables`,
		`r.yaml:6:43: rule "b": action 1 (log): ${ env("friendflow_callback_token") }: env("friendflow_callback_token"): rules cannot read`,
		`r.yaml:8:36: rule "c": once: key: env("FRIENDFLOW_X"): rules cannot read`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nlack %s", got, want)
		}
	}
	if strings.Contains(got, secretValue) {
		t.Error("the value is in the error")
	}
}

// A name only known at run time fails the rule for that event, and
// neither Match nor Explain shows the value.
func TestEnvDeniedAtRunTime(t *testing.T) {
	s := mustLoad(t, oneRule(`
  - name: a
    when: env(From_Account) != ""
    actions: [{log: {message: '${ env(To_Account) }'}}]
`), func(o *Options) { o.Getenv = secretEnv })
	ev := &imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "HOME", To_Account: "FRIENDFLOW_IM_SECRET_KEY"}
	ms, errs := s.Match(ev)
	if len(ms) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "rules cannot read FRIENDFLOW_* variables") {
		t.Fatalf("matches %v errors %v", ms, errs)
	}
	ev.From_Account = "FRIENDFLOW_IM_SECRET_KEY"
	if ms, errs := s.Match(ev); len(ms) != 0 || len(errs) != 1 {
		t.Fatalf("when: matches %v errors %v", ms, errs)
	}
	out, _ := json.Marshal(s.Explain(ev))
	if strings.Contains(string(out), secretValue) || !strings.Contains(string(out), "rules cannot read") {
		t.Errorf("explain: %s", out)
	}
}
