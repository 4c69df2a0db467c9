package im_test

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/im"
)

// A worked example of tls-sig-api-v2: these inputs and the UserSig they
// give, so a change of the signing code cannot pass unnoticed.
const (
	vecAppID  = 1400000000
	vecKey    = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	vecID     = "administrator"
	vecExpire = 15552000 * time.Second
	vecTime   = 1700000000
	vecSig    = "eAEAsgBN-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVyIjoiYWRtaW5pc3RyYXRvciIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLmV4cGlyZSI6MTU1NTIwMDAsIlRMUy50aW1lIjoxNzAwMDAwMDAwLCJUTFMuc2lnIjoiSkN6eGFuRjhOVFRYYXU0bSsyaDl3djdnWUpueU5rc20weG0xTkVYVTI3ND0ifQoBAAD--4MfNLE_"
	// The same document in the v1.3 layout (sorted keys, default zlib).
	vecSigV13 = "eJyqVgrxCdZLrSjILEpVsjI0NTU1MjAw0AGLZqak5pVkpmWmFilZKSWm5GbmZRaXFCWW5BcpQRQUp2QnFhRkpihZGZoYQAFUJjNdyUrJy7mqIjHPzcIvJCQisdQkV9sow7K8zDw90iuv0i*7ONegItfQzzUi1MjcxBZqZElmLsgd5qjGlYGdYKRnoFQLCAAA---zEjSn"
)

func TestGenUserSigWorkedVector(t *testing.T) {
	got, err := im.GenUserSig(vecAppID, vecKey, vecID, vecExpire, time.Unix(vecTime, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Fatalf("UserSig\n got %s\nwant %s", got, vecSig)
	}

	// Pin the intermediate steps too, so a regression says which one broke.
	std := strings.NewReplacer("*", "+", "-", "/", "_", "=").Replace(got)
	z, err := base64.StdEncoding.DecodeString(std)
	if err != nil {
		t.Fatal(err)
	}
	if z[0] != 0x78 || z[1] != 0x01 {
		t.Errorf("zlib header % x, want 78 01 (NoCompression)", z[:2])
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"TLS.ver":"2.0","TLS.identifier":"administrator","TLS.sdkappid":1400000000,"TLS.expire":15552000,"TLS.time":1700000000,"TLS.sig":"JCzxanF8NTTXau4m+2h9wv7gYJnyNksm0xm1NEXU274="}` + "\n"
	if string(js) != wantJSON {
		t.Errorf("JSON\n got %q\nwant %q", js, wantJSON)
	}
}

func TestVerifyUserSig(t *testing.T) {
	issued := time.Unix(vecTime, 0)
	for _, sig := range []string{vecSig, vecSigV13} {
		info, err := im.VerifyUserSig(vecAppID, vecKey, vecID, sig, issued.Add(100*time.Second))
		if err != nil {
			t.Fatalf("%.20s…: %v", sig, err)
		}
		if info.Identifier != vecID || info.SDKAppID != vecAppID || !info.Issued.Equal(issued) || info.Expire != vecExpire {
			t.Errorf("info = %+v", info)
		}
	}
	tests := []struct {
		name  string
		appID int64
		key   string
		id    string
		sig   string
		now   time.Time
		want  error
	}{
		{"at the last valid second", vecAppID, vecKey, vecID, vecSig, issued.Add(vecExpire), nil},
		{"one second later", vecAppID, vecKey, vecID, vecSig, issued.Add(vecExpire + time.Second), im.ErrSigExpired},
		{"wrong key", vecAppID, vecKey + "x", vecID, vecSig, issued, im.ErrSigMismatch},
		{"wrong identifier", vecAppID, vecKey, "bot", vecSig, issued, im.ErrSigIdentifier},
		{"wrong app", vecAppID + 1, vecKey, vecID, vecSig, issued, im.ErrSigSDKAppID},
		{"not base64", vecAppID, vecKey, vecID, "!!!", issued, im.ErrSigMalformed},
		{"not zlib", vecAppID, vecKey, vecID, "aGVsbG8_", issued, im.ErrSigMalformed},
		{"truncated", vecAppID, vecKey, vecID, vecSig[:40], issued, im.ErrSigMalformed},
		{"empty", vecAppID, vecKey, vecID, "", issued, im.ErrSigMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := im.VerifyUserSig(tt.appID, tt.key, tt.id, tt.sig, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGenVerifyRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"administrator", "bot_01", "用户<&>", strings.Repeat("x", 32)} {
		sig, err := im.GenUserSig(1400012345, "k3y", id, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(sig, "+/=") {
			t.Errorf("%q: sig %s keeps a character the substitutions replace", id, sig)
		}
		info, err := im.VerifyUserSig(1400012345, "k3y", id, sig, now.Add(time.Hour))
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if !info.Expires().Equal(now.Add(time.Hour)) {
			t.Errorf("%q: expires %v", id, info.Expires())
		}
		if _, err := im.VerifyUserSig(1400012345, "k3y", id, sig, now.Add(time.Hour+time.Second)); !errors.Is(err, im.ErrSigExpired) {
			t.Errorf("%q: after expiry: %v", id, err)
		}
	}
}

func TestGenUserSigRejectsBadInput(t *testing.T) {
	now := time.Unix(vecTime, 0)
	for name, f := range map[string]func() (string, error){
		"appid":  func() (string, error) { return im.GenUserSig(0, vecKey, vecID, vecExpire, now) },
		"key":    func() (string, error) { return im.GenUserSig(vecAppID, "", vecID, vecExpire, now) },
		"id":     func() (string, error) { return im.GenUserSig(vecAppID, vecKey, "", vecExpire, now) },
		"expire": func() (string, error) { return im.GenUserSig(vecAppID, vecKey, vecID, time.Millisecond, now) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestSignerCachesAndRenews(t *testing.T) {
	start := time.Unix(vecTime, 0)
	clock := newFakeClock(start)
	s := im.NewSigner(vecAppID, vecKey, 0, clock.Now) // default: 180 days

	first, err := s.Sig(vecID)
	if err != nil {
		t.Fatal(err)
	}
	if first != vecSig {
		t.Fatalf("first sig is not the worked vector: %s", first)
	}
	// Cached while more than a tenth of the validity remains.
	clock.Advance(161 * 24 * time.Hour)
	if again, _ := s.Sig(vecID); again != first {
		t.Fatal("regenerated before the renewal point")
	}
	// Renewed once less than 18 of the 180 days remain.
	clock.Advance(2 * 24 * time.Hour)
	renewed, _ := s.Sig(vecID)
	if renewed == first {
		t.Fatal("not renewed with 17 days left")
	}
	info, err := im.VerifyUserSig(vecAppID, vecKey, vecID, renewed, clock.Now())
	if err != nil || !info.Issued.Equal(clock.Now().Truncate(time.Second)) {
		t.Fatalf("renewed sig: %+v, %v", info, err)
	}

	// Per identity.
	other, _ := s.Sig("bot")
	if _, err := im.VerifyUserSig(vecAppID, vecKey, "bot", other, clock.Now()); err != nil {
		t.Fatal(err)
	}

	// A clock gone back well before the issue time gets a new sig.
	clock.Advance(-time.Hour)
	if back, _ := s.Sig(vecID); back == renewed {
		t.Error("sig issued in the future kept after the clock went back an hour")
	}
}

func TestSignerInvalidate(t *testing.T) {
	clock := newFakeClock(time.Unix(vecTime, 0))
	s := im.NewSigner(vecAppID, vecKey, time.Hour, clock.Now)
	a, _ := s.Sig(vecID)
	clock.Advance(time.Second)
	if b, _ := s.Sig(vecID); b != a {
		t.Fatal("not cached")
	}
	s.Invalidate(vecID, "some older sig") // stale news: keep the cached one
	if b, _ := s.Sig(vecID); b != a {
		t.Fatal("Invalidate with another sig dropped the cached one")
	}
	s.Invalidate(vecID, a)
	b, _ := s.Sig(vecID)
	if b == a {
		t.Fatal("Invalidate did not renew")
	}
	if _, err := im.VerifyUserSig(vecAppID, vecKey, vecID, b, clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestSignerConcurrent(t *testing.T) {
	clock := newFakeClock(time.Unix(vecTime, 0))
	s := im.NewSigner(vecAppID, vecKey, time.Hour, clock.Now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				sig, err := s.Sig(vecID)
				if err != nil {
					t.Error(err)
					return
				}
				if j%50 == 0 {
					s.Invalidate(vecID, sig)
					clock.Advance(time.Duration(i) * time.Second)
				}
			}
		})
	}
	wg.Wait()
	sig, _ := s.Sig(vecID)
	if _, err := im.VerifyUserSig(vecAppID, vecKey, vecID, sig, clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkGenUserSig(b *testing.B) {
	now := time.Unix(vecTime, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := im.GenUserSig(vecAppID, vecKey, vecID, vecExpire, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignerCached(b *testing.B) {
	s := im.NewSigner(vecAppID, vecKey, 0, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sig(vecID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
