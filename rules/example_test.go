package rules_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A rule file is loaded with the action kinds it may use; matching an
// event returns the rules it matched, their parameters rendered for it, and
// the rules that failed at run time.
func ExampleSet_Match() {
	dir, err := os.MkdirTemp("", "rules-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	const file = `rules:
  - name: welcome
    on: Sns.CallbackFriendAdd
    when: ClientCmd in ["friend_response", "FriendResponse"]
    actions:
      - log: {message: "welcome ${ To_Account }, from ${ From_Account }", level: info}
  - name: first-pair
    on: Sns.CallbackFriendAdd
    when: PairIndex % PairCount == 0
    actions:
      - log: {message: "pair ${ PairIndex }"}
`
	if err := os.WriteFile(filepath.Join(dir, "welcome.yaml"), []byte(file), 0o644); err != nil {
		log.Fatal(err)
	}
	var reg actions.Registry
	if err := reg.Register(&actions.Log{}); err != nil {
		log.Fatal(err)
	}
	set, err := rules.Load(dir, rules.Options{Registry: &reg})
	if err != nil {
		log.Fatal(err)
	}

	// PairCount 0 makes the second rule divide by zero: it fails for this
	// event and counts as not matched, without affecting the first.
	ev := &imevent.Event{
		CallbackCommand: imevent.CmdFriendAdd,
		ClientCmd:       "friend_response",
		From_Account:    "alice",
		To_Account:      "bob",
	}
	matches, errs := set.Match(ev)
	for _, m := range matches {
		for _, a := range m.Actions {
			fmt.Printf("%s: %s message=%q level=%v\n", m.Rule, a.Kind, a.Params["message"], a.Params["level"])
		}
	}
	for _, e := range errs {
		fmt.Println("failed:", e.Rule)
	}
	// Output:
	// welcome: log message="welcome bob, from alice" level=info
	// failed: first-pair
}
