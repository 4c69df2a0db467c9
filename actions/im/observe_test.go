package im_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/actions/im/imtest"
)

// TestCallObservesEachRequest: Config.Observe hears every request the
// client makes against the fake IM, with its path and outcome; a rejected
// UserSig that is renewed counts as two requests.
func TestCallObservesEachRequest(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{})
	var (
		mu  sync.Mutex
		got []string
	)
	c := newClient(t, srv, func(cfg *im.Config) {
		cfg.Observe = func(path, result string) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, path+" "+result)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	for _, r := range []imtest.Reply{{}, {ErrorCode: 60007}, {ErrorCode: 60019}, {ErrorCode: 90008}, {HTTPStatus: 502}, {ErrorCode: 70001}} {
		srv.Script(r)
		_ = c.Call(ctx, "sns/friend_check", nil, nil)
	}
	cancel()
	_ = c.Call(ctx, "openim/sendmsg", nil, nil) // gives up waiting for the rate limit
	want := []string{
		"sns/friend_check ok", "sns/friend_check rate_limited", "sns/friend_check rate_limited",
		"sns/friend_check api_error", "sns/friend_check http_error",
		"sns/friend_check api_error", "sns/friend_check ok", // 70001, then the renewed UserSig
		"openim/sendmsg failed",
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("observed\n%q\nwant\n%q", got, want)
	}
}
