package rules

import (
	"context"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/rules/imevent"
)

func welcomeSet(b *testing.B, profile bool) *Set {
	text := `Hi ${ From_Account }, thanks for adding me!`
	if profile {
		text = `Hi ${ profile(From_Account).Nick ?? From_Account }, thanks for adding me!`
	}
	return mustLoad(b, oneRule(`  - name: welcome
    actions:
      - test.send: {to: "${ From_Account }", body: "`+text+`"}
`))
}

// BenchmarkProfileMatch: what profile() adds to matching (the template is
// deferred, its accounts and fields recorded).
func BenchmarkProfileMatch(b *testing.B) {
	for _, profile := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "profile"}[profile], func(b *testing.B) {
			s := welcomeSet(b, profile)
			ev := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "user0001", To_Account: "official"}
			b.ReportAllocs()
			for b.Loop() {
				if ms, _ := s.Match(&ev); len(ms) != 1 {
					b.Fatal(ms)
				}
			}
		})
	}
}

// BenchmarkProfileResolve: rendering a deferred template when the job runs,
// its profile cached.
func BenchmarkProfileResolve(b *testing.B) {
	s := welcomeSet(b, true)
	ev := imevent.Event{CallbackCommand: imevent.CmdFriendAdd, From_Account: "user0001", To_Account: "official"}
	ms, _ := s.Match(&ev)
	params := ms[0].Actions[0].Params
	event := imevent.AppendEventJSON(nil, &ev)
	r := NewResolver(constProfiles{"user0001": actions.Profile{Nick: "Alice"}.Frozen()}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := r.Resolve(ctx, params, event)
		if err != nil || out["body"] != "Hi Alice, thanks for adding me!" {
			b.Fatal(out, err)
		}
	}
}

// constProfiles is a ProfileSource of fixed profiles, as a warm cache.
type constProfiles map[string]actions.Profile

func (c constProfiles) Profiles(_ context.Context, accounts, _ []string) (map[string]actions.Profile, error) {
	return c, nil
}

func (c constProfiles) Prefetch([]string, []string) time.Duration { return 0 }
