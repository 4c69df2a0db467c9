package imcallback

import (
	"net/url"
	"strings"
)

// callbackQuery holds the query parameters the receiver reads. Tencent
// puts the callback's metadata and signature in the query string.
type callbackQuery struct {
	Command, ClientIP, OptPlatform, SdkAppid, Sign, RequestTime string
}

// parseCallbackQuery reads the parameters the way url.ParseQuery followed by
// Get would (first value of a key wins; pairs that do not parse are
// skipped), without building the whole map: on a hot path that only needs
// six keys, the map and its slices were a sizeable share of a request's
// allocations. TestParseCallbackQueryIsURLQuery holds it to that. Unlike
// url.ParseQuery it has no cap on the number of pairs: that cap bounds the
// map it builds, and nothing here is kept.
func parseCallbackQuery(raw string) callbackQuery {
	var q callbackQuery
	var seen [6]bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue // url.ParseQuery rejects these pairs
		}
		key, value, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(key)
		if err != nil {
			continue
		}
		var i int
		var dst *string
		switch key {
		case "CallbackCommand":
			i, dst = 0, &q.Command
		case "ClientIP":
			i, dst = 1, &q.ClientIP
		case "OptPlatform":
			i, dst = 2, &q.OptPlatform
		case "SdkAppid":
			i, dst = 3, &q.SdkAppid
		case "Sign":
			i, dst = 4, &q.Sign
		case "RequestTime":
			i, dst = 5, &q.RequestTime
		default:
			continue
		}
		value, err = url.QueryUnescape(value)
		if err != nil || seen[i] {
			continue
		}
		seen[i] = true
		*dst = value
	}
	return q
}
