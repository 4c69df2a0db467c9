package imcallback

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// BenchmarkReceiver is the receiver's own work for an accepted signed
// callback: query, Sign, body, decode, reply (the handler does nothing).
func BenchmarkReceiver(b *testing.B) {
	now := time.Unix(1764072000, 0)
	rc := &Receiver{SdkAppid: testAppID, Token: []byte(testToken), Logger: slog.New(slog.DiscardHandler),
		Now:     func() time.Time { return now },
		Handler: HandlerFunc(func(context.Context, *Callback) (Reply, error) { return OK(), nil })}
	f := &fixture{now: now}
	target := "/callback?" + f.query(imevent.CmdFriendAdd).Encode()
	body := callbacks.Must("friend_add.json")
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
