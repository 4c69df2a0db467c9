package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEventsExportSendsTheAdminToken: commands that call a running
// instance send --admin-token-file's token, trimmed, as a bearer token.
func TestEventsExportSendsTheAdminToken(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		if r.URL.Path != "/events/export" || got != "Bearer tok-123" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"id":1,"event":{}}` + "\n"))
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"events", "export", "--admin-url", srv.URL, "--admin-token-file", tokenFile}, &out, &errOut, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), `"id":1`) {
		t.Fatalf("exit %d, %q %q (sent %q)", code, out.String(), errOut.String(), got)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"events", "export", "--admin-url", srv.URL}, &out, &errOut, func(string) string { return "" }); code != 1 || !strings.Contains(errOut.String(), "401") {
		t.Fatalf("without the token: exit %d, %q", code, errOut.String())
	}
}
