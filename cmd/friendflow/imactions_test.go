package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions"
)

// The IM kinds' parameters are checked at load, each problem at its
// file:line:col: wrong types, unknown keys, list lengths out of range,
// custom friend field names outside Tencent's rules.
func TestLintIMActionParams(t *testing.T) {
	var groups []string
	for i := range 33 {
		groups = append(groups, fmt.Sprintf("g%d", i))
	}
	rules := `rules:
  - name: group-members-string
    actions:
      - im.add_to_group:
          group: onboarding
          members: alice
  - name: group-members-empty
    actions:
      - im.add_to_group:
          group: onboarding
          members: []
  - name: group-silence
    actions:
      - im.add_to_group: { group: g, silence: "yes" }
  - name: batch-item
    actions:
      - im.batch_send:
          to: [a, { x: 1 }]
          text: hi
  - name: batch-callbacks
    actions:
      - im.batch_send: { to: [a], text: hi, no_callbacks: true }
  - name: custom-name
    actions:
      - im.friend_update:
          from: a
          to: b
          custom: { source-x: y }
  - name: unknown-key
    actions:
      - im.friend_update:
          from: a
          to: b
          Remark: r
  - name: too-many-groups
    actions:
      - im.friend_update:
          from: a
          to: b
          groups: [` + strings.Join(groups, ", ") + `]
`
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yaml")
	if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"lint", dir}, &out, &errOut, func(string) string { return "" }); code != 1 {
		t.Fatalf("lint exit %d, want 1\n%s%s", code, &out, &errOut)
	}
	want := []string{
		`:6:20: rule "group-members-string": action 1 (im.add_to_group): members: want list of strings, got string`,
		`:11:20: rule "group-members-empty": action 1 (im.add_to_group): members: 0 items, want at least 1`,
		`:14:47: rule "group-silence": action 1 (im.add_to_group): silence: want bool, got string`,
		`:18:15: rule "batch-item": action 1 (im.batch_send): to: item 2: want string, got map`,
		`:22:45: rule "batch-callbacks": action 1 (im.batch_send): no_callbacks: unknown parameter`,
		`:28:31: rule "custom-name": action 1 (im.friend_update): custom.source-x: custom field name "source-x": want 1 to 8 letters, digits or _`,
		`:34:11: rule "unknown-key": action 1 (im.friend_update): Remark: unknown parameter`,
		`:40:19: rule "too-many-groups": action 1 (im.friend_update): groups: 33 items, more than the 32 allowed`,
	}
	got := out.String() + errOut.String()
	for _, w := range want {
		if !strings.Contains(got, file+w) {
			t.Errorf("lint output lacks\n  %s%s\ngot:\n%s", file, w, got)
		}
	}
}

// --im-rate-api takes api=N pairs for the APIs friendflow calls, from the
// command line or its env twin; mistakes name the flag and the variable.
func TestIMRateFlags(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg, err := parseServe([]string{"--sdkappid", "1", "--im-rate", "150", "--im-rate-api", "openim/batchsendmsg=20, v4/sns/friend_update=7.5"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IMRate != 150 || len(cfg.IMRateAPI) != 2 || cfg.IMRateAPI["openim/batchsendmsg"] != 20 || cfg.IMRateAPI["sns/friend_update"] != 7.5 || cfg.IMBatchRecipients != 12000 {
		t.Errorf("config %v %v %v", cfg.IMRate, cfg.IMRateAPI, cfg.IMBatchRecipients)
	}
	cfg, err = parseServe([]string{"--sdkappid", "1"}, env(map[string]string{
		"FRIENDFLOW_IM_RATE_API": "openim/sendmsg=180", "FRIENDFLOW_IM_BATCH_RECIPIENTS": "24000"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IMRate != 100 || cfg.IMRateAPI["openim/sendmsg"] != 180 || cfg.IMBatchRecipients != 24000 {
		t.Errorf("config from env %v %v %v", cfg.IMRate, cfg.IMRateAPI, cfg.IMBatchRecipients)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--im-rate-api", "openim/sendmsgs=5"}, nil, `invalid value "openim/sendmsgs=5" for --im-rate-api (FRIENDFLOW_IM_RATE_API)`},
		{nil, map[string]string{"FRIENDFLOW_IM_RATE_API": "openim/sendmsg=0"}, "FRIENDFLOW_IM_RATE_API"},
		{[]string{"--im-rate-api", "openim/sendmsg"}, nil, "is not api=N"},
		{[]string{"--im-rate-api", "openim/sendmsg=1,openim/sendmsg=2"}, nil, "named twice"},
		{[]string{"--im-batch-recipients", "500"}, nil, "--im-batch-recipients (FRIENDFLOW_IM_BATCH_RECIPIENTS) must be more than 500"},
	} {
		_, err := parseServe(append([]string{"--sdkappid", "1"}, tc.args...), env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// Every parameter of every action kind has an example in the reference,
// and the example is a value the parameter accepts.
func TestEveryParameterHasAWorkingExample(t *testing.T) {
	reg := newRegistry(slog.New(slog.DiscardHandler), nil)
	for _, k := range reg.Kinds() {
		checkExamples(t, k.Spec().Name, k.Spec().Params)
	}
}

func checkExamples(t *testing.T, where string, params []actions.Param) {
	t.Helper()
	for _, p := range params {
		name := where + "." + p.Name
		if p.Example == "" {
			t.Errorf("%s has no example", name)
			continue
		}
		var v any
		if err := yaml.Unmarshal([]byte("v: "+p.Example), &struct{ V *any }{&v}); err != nil || v == nil {
			t.Errorf("%s: example %q is not a YAML value: %v", name, p.Example, err)
			continue
		}
		one := actions.Spec{Params: []actions.Param{p}}
		if _, err := one.Check(map[string]any{p.Name: v}); err != nil {
			t.Errorf("%s: example %q: %v", name, p.Example, err)
		}
		checkExamples(t, name, p.Fields)
	}
}
