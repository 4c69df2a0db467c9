package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCloseUnlessCallbackRoutes: a request for the callback path goes to
// the callback handler, keeping its connection, without the mux; any
// other goes to the mux and is asked to close; a callback path the mux
// would clean or match as a subtree is always left to the mux.
func TestCloseUnlessCallbackRoutes(t *testing.T) {
	for _, tc := range []struct {
		cbPath, reqPath string
		direct, close   bool
	}{
		{"/callback", "/callback", true, false},
		{"/callback", "/other", false, true},
		{"/callback", "/callback/x", false, true},
		{"/hooks/im", "/hooks/im", true, false},
		{"/cb/", "/cb/", false, false},
		{"/a/../cb", "/a/../cb", false, false},
		{"/cb/{x}", "/cb/{x}", false, false},
	} {
		var cbCalls, muxCalls int
		cb := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { cbCalls++ })
		mux := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { muxCalls++ })
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "http://x"+tc.reqPath, nil)
		r.URL.Path = tc.reqPath // as sent, not cleaned
		closeUnlessCallback(tc.cbPath, cb, mux).ServeHTTP(w, r)
		if got := cbCalls == 1 && muxCalls == 0; got != tc.direct || cbCalls+muxCalls != 1 {
			t.Errorf("%s for %s: callback handler %d calls, mux %d (want direct %v)", tc.reqPath, tc.cbPath, cbCalls, muxCalls, tc.direct)
		}
		if got := w.Header().Get("Connection") == "close"; got != tc.close {
			t.Errorf("%s for %s: Connection: close %v, want %v", tc.reqPath, tc.cbPath, got, tc.close)
		}
	}
}
