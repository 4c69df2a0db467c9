package imcallback

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

func queryByURL(raw string) callbackQuery {
	v, _ := url.ParseQuery(raw)
	return callbackQuery{
		Command: v.Get("CallbackCommand"), ClientIP: v.Get("ClientIP"), OptPlatform: v.Get("OptPlatform"),
		SdkAppid: v.Get("SdkAppid"), Sign: v.Get("Sign"), RequestTime: v.Get("RequestTime"),
	}
}

// TestParseCallbackQueryIsURLQuery: the receiver's query reader gives what
// url.ParseQuery and Get give, on Tencent's queries and on random ones
// built from the troublesome pieces (escapes, bad escapes, semicolons,
// repeated and empty keys).
func TestParseCallbackQueryIsURLQuery(t *testing.T) {
	fixed := []string{
		"",
		"SdkAppid=1400000000&CallbackCommand=Sns.CallbackFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI",
		"SdkAppid=1&CallbackCommand=Sns.CallbackFriendAdd&Sign=ABCDEF&RequestTime=1700000000",
		"SdkAppid=1&SdkAppid=2", "SdkAppid=%zz&SdkAppid=3", "Sdk%41ppid=4", "SdkAppid=a+b%20c",
		"SdkAppid=1;CallbackCommand=x", "&&SdkAppid=5&", "SdkAppid", "SdkAppid=", "=SdkAppid", "Sign=%",
	}
	for _, raw := range fixed {
		if got, want := parseCallbackQuery(raw), queryByURL(raw); got != want {
			t.Errorf("%q:\n got %+v\nwant %+v", raw, got, want)
		}
	}
	keys := []string{"CallbackCommand", "ClientIP", "OptPlatform", "SdkAppid", "Sign", "RequestTime",
		"contenttype", "Sdk%41ppid", "Sign%", "", "x;y", "Client+IP"}
	vals := []string{"", "1", "a+b", "%41", "%zz", "%", "Sns.CallbackFriendAdd", "v;w", "é", "%C3%A9", "=", "a=b"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var parts []string
		for range rng.IntN(8) {
			k, v := keys[rng.IntN(len(keys))], vals[rng.IntN(len(vals))]
			switch rng.IntN(4) {
			case 0:
				parts = append(parts, k)
			default:
				parts = append(parts, k+"="+v)
			}
		}
		raw := strings.Join(parts, "&")
		if got, want := parseCallbackQuery(raw), queryByURL(raw); got != want {
			t.Fatalf("%q:\n got %+v\nwant %+v", raw, got, want)
		}
	}
}

func FuzzParseCallbackQuery(f *testing.F) {
	f.Add("SdkAppid=1400000000&CallbackCommand=Sns.CallbackFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI")
	f.Add("Sign=%zz;&RequestTime=1")
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.Count(raw, "&") >= 10000 {
			t.Skip("url.ParseQuery refuses more than 10000 parameters; the receiver keeps none of them")
		}
		if got, want := parseCallbackQuery(raw), queryByURL(raw); got != want {
			t.Fatalf("%q:\n got %+v\nwant %+v", raw, got, want)
		}
	})
}
