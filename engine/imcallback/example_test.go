package imcallback_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/rules/imevent"
)

// A Receiver checks a callback's signature and body, then hands the decoded
// events to a Handler and writes its Reply back to Tencent.
func ExampleReceiver() {
	token := []byte("my-callback-token")
	rc := &imcallback.Receiver{
		SdkAppid: 1400000000,
		Token:    token,
		Logger:   slog.New(slog.DiscardHandler),
		Handler: imcallback.HandlerFunc(func(ctx context.Context, cb *imcallback.Callback) (imcallback.Reply, error) {
			for _, e := range cb.Events {
				fmt.Printf("%s: %s -> %s (%d of %d)\n", e.CallbackCommand, e.From_Account, e.To_Account, e.PairIndex+1, e.PairCount)
			}
			return imcallback.AllowAll(cb), nil
		}),
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	// What Tencent sends: the command and signature in the query, the
	// friend pairs in the body.
	rt := strconv.FormatInt(time.Now().Unix(), 10)
	q := url.Values{
		"SdkAppid":        {"1400000000"},
		"CallbackCommand": {imevent.CmdFriendAdd},
		"contenttype":     {"json"},
		"ClientIP":        {"10.0.0.1"},
		"OptPlatform":     {"RESTAPI"},
		"RequestTime":     {rt},
		"Sign":            {imcallback.Sign(token, rt)},
	}
	body := `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[` +
		`{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"},` +
		`{"From_Account":"alice","To_Account":"carol","Initiator_Account":"alice"}],` +
		`"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":0}`
	resp, err := http.Post(srv.URL+"/?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(reply))
	// Output:
	// Sns.CallbackFriendAdd: alice -> bob (1 of 2)
	// Sns.CallbackFriendAdd: alice -> carol (2 of 2)
	// 200 {"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}
}

// Decode turns a callback body into one event per pair; the query's
// command and metadata must be set on the Callback first.
func ExampleDecode() {
	cb := &imcallback.Callback{Command: imevent.CmdPrevFriendAdd, SdkAppid: 1400000000, ReceivedAt: time.Now()}
	body := `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","Requester_Account":"alice","From_Account":"alice",` +
		`"FriendItem":[{"To_Account":"bob","Remark":"","GroupName":"","AddSource":"AddSource_Type_Android","AddWording":"hi"}],` +
		`"AddType":"Add_Type_Both","ForceAddFlags":0,"EventTime":1764072000000}`
	if err := imcallback.Decode([]byte(body), cb); err != nil {
		fmt.Println(err)
		return
	}
	e := cb.Events[0]
	fmt.Println(e.From_Account, "->", e.To_Account, e.AddSource, e.AddWording)
	// Output: alice -> bob AddSource_Type_Android hi
}
