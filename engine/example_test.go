package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
)

// printQueue stands in for the durable queue (engine/queue) and prints
// the jobs the engine stores.
type printQueue struct{}

func (printQueue) Enqueue(_ context.Context, callbackID string, jobs []queue.Job) error {
	for _, j := range jobs {
		fmt.Printf("stored %s job of rule %s: %v\n", j.Action, j.Rule, j.Params)
	}
	return nil
}

func (printQueue) OnceBy(context.Context, string, time.Duration, string) (bool, queue.OnceSeen, error) {
	return true, queue.OnceSeen{}, nil
}
func (printQueue) Forget(context.Context, string, time.Duration) error { return nil }
func (printQueue) MarkCancel(context.Context, string, []queue.Pair, time.Time, string) error {
	return nil
}

// The Engine is the receiver's Handler: for each event of a decoded
// callback it matches the active rules, decides a before-callback's
// targets on the spot (deny) and stores the other actions as jobs before
// it returns the reply.
func Example() {
	dir, err := os.MkdirTemp("", "engine-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	const ruleFile = `rules:
  - name: no-casino
    on: Sns.CallbackPrevFriendAdd
    when: AddWording matches "(?i)casino"
    actions:
      - deny: { code: 38001, reason: spam }
  - name: audit
    on: Sns.CallbackPrevFriendAdd
    actions:
      - log: { message: "${ From_Account } asks ${ To_Account }" }
`
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(ruleFile), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	var kinds actions.Registry
	for _, k := range []actions.Kind{&actions.Deny{}, &actions.Log{}} {
		if err := kinds.Register(k); err != nil {
			fmt.Println(err)
			return
		}
	}
	set, err := rules.Load(dir, rules.Options{Registry: &kinds})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := &engine.Engine{
		Rules:           func() *rules.Set { return set },
		Queue:           printQueue{},
		Logger:          slog.New(slog.DiscardHandler),
		DecisionTimeout: 500 * time.Millisecond,
	}

	// What imcallback.Receiver hands the engine: a checked, decoded callback.
	cb := &imcallback.Callback{ID: "cb-1", Command: imevent.CmdPrevFriendAdd, SdkAppid: 1400000000, ReceivedAt: time.Now()}
	body := `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"alice","From_Account":"alice",` +
		`"FriendItem":[{"To_Account":"bob","AddWording":"hi"},{"To_Account":"carol","AddWording":"Casino night!"}],` +
		`"AddType":"Add_Type_Both","ForceAddFlags":0,"EventTime":1764072000000}`
	if err := imcallback.Decode([]byte(body), cb); err != nil {
		fmt.Println(err)
		return
	}
	reply, err := e.Handle(context.Background(), cb)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := json.Marshal(reply)
	fmt.Println(string(out))
	// Output:
	// stored log job of rule audit: map[message:alice asks bob]
	// stored log job of rule audit: map[message:alice asks carol]
	// {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":[{"To_Account":"bob","ResultCode":0,"ResultInfo":""},{"To_Account":"carol","ResultCode":38001,"ResultInfo":"spam"}]}
}
