package im_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

func newProfiles(t *testing.T, cfg im.ProfilesConfig) (*im.Profiles, *imtest.Server) {
	t.Helper()
	srv := imtest.NewServer(t, imtest.Options{})
	c, err := im.NewClient(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return im.NewProfiles(c, cfg), srv
}

func portraitRequests(srv *imtest.Server) []imtest.Request {
	var out []imtest.Request
	for _, r := range srv.Requests() {
		if r.Path == "/v4/"+im.PortraitGetPath {
			out = append(out, r)
		}
	}
	return out
}

func TestProfilesReadAndCache(t *testing.T) {
	var hits, misses atomic.Int64
	p, srv := newProfiles(t, im.ProfilesConfig{Observe: func(hit bool) {
		if hit {
			hits.Add(1)
		} else {
			misses.Add(1)
		}
	}})
	srv.CustomProfileTags("Level")
	srv.SetProfile("alice", map[string]any{"Tag_Profile_IM_Nick": "Alice", "Tag_Profile_IM_Language": 2,
		"Tag_Profile_IM_Gender": "Gender_Type_Female", "Tag_Profile_IM_Image": "https://a/x.png", "Tag_Profile_Custom_Level": "gold"})
	ctx := context.Background()
	got, err := p.Profiles(ctx, []string{"alice", "bob"}, []string{"Level"})
	if err != nil {
		t.Fatal(err)
	}
	want := actions.Profile{Nick: "Alice", Language: 2, Gender: "Gender_Type_Female", FaceUrl: "https://a/x.png", Custom: map[string]string{"Level": "gold"}}
	if fmt.Sprint(got["alice"].Value()) != fmt.Sprint(want.Value()) || got["alice"].Nick != "Alice" {
		t.Errorf("alice = %+v, want %+v", got["alice"], want)
	}
	if v := got["bob"].Value(); v["Nick"] != nil {
		t.Errorf("bob without a profile: Nick = %v, want nil", v["Nick"])
	}
	reqs := portraitRequests(srv)
	if len(reqs) != 1 {
		t.Fatalf("%d portrait_get requests, want 1", len(reqs))
	}
	var body map[string]any
	_ = json.Unmarshal(reqs[0].Body, &body)
	if fmt.Sprint(body["TagList"]) != "[Tag_Profile_IM_Nick Tag_Profile_IM_Image Tag_Profile_IM_Gender Tag_Profile_IM_Language Tag_Profile_IM_Location Tag_Profile_IM_SelfSignature Tag_Profile_Custom_Level]" {
		t.Errorf("TagList = %v", body["TagList"])
	}
	if _, err := p.Profiles(ctx, []string{"alice", "bob"}, []string{"Level"}); err != nil {
		t.Fatal(err)
	}
	if n := len(portraitRequests(srv)); n != 1 {
		t.Errorf("%d requests after a cached read, want still 1", n)
	}
	if hits.Load() != 2 || misses.Load() != 2 {
		t.Errorf("hits %d, misses %d; want 2 and 2", hits.Load(), misses.Load())
	}
}

// TestProfilesBatch: concurrent readers of 250 accounts share requests of
// at most 100 accounts.
func TestProfilesBatch(t *testing.T) {
	p, srv := newProfiles(t, im.ProfilesConfig{Window: time.Hour})
	var wg sync.WaitGroup
	for i := range 250 {
		wg.Go(func() {
			a := fmt.Sprintf("u%03d", i)
			if _, err := p.Profiles(context.Background(), []string{a}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	// With an hour's window only full batches leave; the last 50 wait.
	deadline := time.Now().Add(10 * time.Second)
	for len(portraitRequests(srv)) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.Prefetch(accountsN("v", 50), nil) // fills the third batch
	wg.Wait()
	reqs := portraitRequests(srv)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		var body struct{ To_Account []string }
		_ = json.Unmarshal(r.Body, &body)
		if len(body.To_Account) != im.MaxPortraitAccounts {
			t.Errorf("a request of %d accounts, want %d", len(body.To_Account), im.MaxPortraitAccounts)
		}
	}
}

func accountsN(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestProfilesUnknownAccount: whether an unknown account fails the whole
// request or only its entry is not documented; both give the others their
// profiles and the unknown one none.
func TestProfilesUnknownAccount(t *testing.T) {
	for _, whole := range []bool{true, false} {
		t.Run(fmt.Sprint("whole=", whole), func(t *testing.T) {
			p, srv := newProfiles(t, im.ProfilesConfig{})
			srv.UnknownFailsPortraitGet(whole)
			srv.Unknown("ghost")
			srv.SetProfile("alice", map[string]any{"Tag_Profile_IM_Nick": "Alice"})
			srv.SetProfile("carol", map[string]any{"Tag_Profile_IM_Nick": "Carol"})
			p.Prefetch([]string{"alice", "ghost", "carol"}, nil)
			got, err := p.Profiles(context.Background(), []string{"alice", "ghost", "carol"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got["alice"].Nick != "Alice" || got["carol"].Nick != "Carol" || got["ghost"].Nick != "" {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestProfilesErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("a user's 40006 is transient", func(t *testing.T) {
		p, srv := newProfiles(t, im.ProfilesConfig{})
		srv.ScriptFor("/v4/"+im.PortraitGetPath, imtest.Reply{Accounts: map[string]int{"alice": 40006}})
		_, err := p.Profiles(ctx, []string{"alice"}, nil)
		if perm, _ := actions.Classify(err); err == nil || perm {
			t.Fatalf("err = %v, want a transient error", err)
		}
		srv.SetProfile("alice", map[string]any{"Tag_Profile_IM_Nick": "Alice"})
		got, err := p.Profiles(ctx, []string{"alice"}, nil)
		if err != nil || got["alice"].Nick != "Alice" {
			t.Errorf("after the failure: %+v, %v (a failure must not be cached)", got, err)
		}
	})
	t.Run("a custom tag the app lacks is permanent", func(t *testing.T) {
		p, _ := newProfiles(t, im.ProfilesConfig{})
		_, err := p.Profiles(ctx, []string{"alice"}, []string{"Nope"})
		if perm, _ := actions.Classify(err); err == nil || !perm {
			t.Fatalf("err = %v, want a permanent error (40009)", err)
		}
	})
	t.Run("HTTP 502 is transient", func(t *testing.T) {
		p, srv := newProfiles(t, im.ProfilesConfig{})
		srv.ScriptFor("/v4/"+im.PortraitGetPath, imtest.Reply{HTTPStatus: 502})
		_, err := p.Profiles(ctx, []string{"alice"}, nil)
		if perm, _ := actions.Classify(err); err == nil || perm {
			t.Fatalf("err = %v, want a transient error", err)
		}
	})
}

func TestProfilesTTLAndSize(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, srv := newProfiles(t, im.ProfilesConfig{TTL: time.Minute, Size: 2, Now: clock})
	ctx := context.Background()
	read := func(a string) {
		t.Helper()
		if _, err := p.Profiles(ctx, []string{a}, nil); err != nil {
			t.Fatal(err)
		}
	}
	read("a")
	read("a")
	if n := len(portraitRequests(srv)); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	read("a")
	if n := len(portraitRequests(srv)); n != 2 {
		t.Fatalf("%d requests after the TTL, want 2", n)
	}
	read("b")
	read("c") // evicts a, the least recently used
	if p.Len() != 2 {
		t.Errorf("cache holds %d, want its size 2", p.Len())
	}
	read("c")
	read("a")
	if n := len(portraitRequests(srv)); n != 5 {
		t.Errorf("%d requests, want 5 (a evicted, c cached)", n)
	}
}
