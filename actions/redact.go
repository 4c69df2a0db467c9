package actions

import (
	"net/url"
	"strings"
)

// RedactURL is u as logs, errors and explain show it: no user info, no
// fragment, and the query, which often carries a token, elided.
func RedactURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	s := r.String()
	if base, _, ok := strings.Cut(s, "?"); ok {
		s = base + "?…"
	}
	return s
}
