package actions_test

import (
	"context"
	"fmt"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// greet is a tiny action kind: it prints greetings.
type greet struct{}

// greetParams are the kind's parameters, one field each: the field's type
// is the parameter's, and DeclareParams says the rest.
type greetParams struct {
	To    string
	Times int64
	Pause time.Duration
}

func (p *greetParams) DeclareParams(d *actions.Decl) {
	d.Param(&p.To, actions.Param{Name: "to", Required: true, Doc: "whom to greet"})
	d.Param(&p.Times, actions.Param{Name: "times", Default: 1, Doc: "how often"})
	d.Param(&p.Pause, actions.Param{Name: "pause", Default: "0s", Doc: "wait between greetings"})
}

// greetSpec is the kind's declaration: the loader checks rules against
// its Params, derived from greetParams, and the reference, lint errors
// and Decode derive from it.
var greetSpec = actions.Spec{
	Name:   "greet",
	Doc:    "Prints a greeting.",
	Params: actions.ParamsOf[greetParams](),
	Validate: func(p map[string]any) error {
		if n, ok := p["times"].(int64); ok && n < 1 {
			return &actions.ParamError{Path: "times", Msg: "must be at least 1"}
		}
		return nil
	},
}

func (greet) Spec() actions.Spec { return greetSpec }

func (greet) Do(ctx context.Context, job actions.Job, params map[string]any) error {
	p, err := actions.Decode[greetParams](greetSpec, params)
	if err != nil {
		return actions.Permanent(fmt.Errorf("greet: %w", err))
	}
	for i := range p.Times {
		if i > 0 {
			select {
			case <-time.After(p.Pause):
			case <-ctx.Done():
				return ctx.Err() // unclassified: transient, the job is tried again
			}
		}
		fmt.Println("hello", p.To)
	}
	return nil
}

// A kind declares its Spec, is registered, has its parameters checked (as
// the rule loader does, and the worker before each run) and runs.
func ExampleRegistry() {
	var reg actions.Registry
	if err := reg.Register(greet{}); err != nil {
		panic(err)
	}
	kind, _ := reg.Lookup("greet")

	// A rule's parameters, as the loader checks them.
	_, err := kind.Spec().Check(map[string]any{"to": "alice", "times": 0})
	fmt.Println("lint:", err)
	_, err = kind.Spec().Check(map[string]any{"to": "alice", "time": 2})
	fmt.Println("lint:", err)

	// A job's rendered parameters: checked, defaults applied, then run.
	params, err := kind.Spec().Check(map[string]any{"to": "bob", "times": 2.0})
	if err != nil {
		panic(err)
	}
	fmt.Println("checked:", params["to"], params["times"], params["pause"])
	err = kind.Do(context.Background(), actions.Job{ID: "job-1", Action: "greet"}, params)
	fmt.Println("err:", err)

	// Parameters that never went through Check still cannot reach Do as
	// zero values: they are a permanent failure.
	err = kind.Do(context.Background(), actions.Job{ID: "job-2"}, map[string]any{"to": 7, "times": "twice"})
	permanent, _ := actions.Classify(err)
	fmt.Println("err:", err, "permanent:", permanent)
	// Output:
	// lint: times: must be at least 1
	// lint: time: unknown parameter (known: [to times pause])
	// checked: bob 2 0s
	// hello bob
	// hello bob
	// err: <nil>
	// err: greet: times: want integer, got string permanent: true
}
