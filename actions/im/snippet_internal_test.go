package im

import (
	"net/url"
	"strings"
	"testing"
)

// TestSnippetRedactsTheEscapedSecret: a UserSig holds '*' (Tencent's
// base64 variant), which the request URL carries as %2A; a server quoting
// that URL in its error must not put the UserSig into friendflow's errors.
func TestSnippetRedactsTheEscapedSecret(t *testing.T) {
	sig := "eAEAsgBN-3siVExT*6NWw_"
	q := url.Values{"usersig": {sig}}.Encode()
	if !strings.Contains(q, "%2A") {
		t.Fatalf("the query %q does not escape the sig", q)
	}
	for _, body := range []string{"bad gateway for /v4/a/status?" + q, "cannot parse " + sig} {
		if got := snippet([]byte(body), sig); strings.Contains(got, "eAEAsgBN") {
			t.Errorf("snippet(%q) = %q: the UserSig leaks", body, got)
		}
	}
}
