package im

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSigExpire is the validity of a generated admin UserSig: 180 days,
// the official samples' default.
const DefaultSigExpire = 180 * 24 * time.Hour

// Errors returned by VerifyUserSig. A fake IM server maps them to Tencent's
// error codes; the client never needs them.
var (
	ErrSigMalformed  = errors.New("usersig: malformed")
	ErrSigMismatch   = errors.New("usersig: signature does not match")
	ErrSigIdentifier = errors.New("usersig: identifier does not match")
	ErrSigSDKAppID   = errors.New("usersig: sdkappid does not match")
	ErrSigExpired    = errors.New("usersig: expired")
)

// sigDoc is the signed JSON document. Field order is the official Go
// library's v1.4 order: with json.Encoder's trailing newline and zlib
// NoCompression it makes the output byte-identical to that library, which
// is what lets a test pin an exact vector.
type sigDoc struct {
	Ver        string `json:"TLS.ver"`
	Identifier string `json:"TLS.identifier"`
	SDKAppID   int64  `json:"TLS.sdkappid"`
	Expire     int64  `json:"TLS.expire"`
	Time       int64  `json:"TLS.time"`
	Sig        string `json:"TLS.sig"`
	UserBuf    string `json:"TLS.userbuf,omitempty"`
}

// sigEncoding is standard base64 with Tencent's URL-safe substitutions
// (+ → *, / → -, = → _); padding is kept, as '_'.
var sigEncoding = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-").WithPadding('_')

// GenUserSig returns the UserSig (tls-sig-api-v2) of identifier, issued at
// now and valid for expire (whole seconds), signed with the console secret
// key used as raw bytes.
func GenUserSig(sdkAppID int64, key, identifier string, expire time.Duration, now time.Time) (string, error) {
	switch {
	case sdkAppID <= 0:
		return "", errors.New("usersig: sdkappid must be positive")
	case key == "":
		return "", errors.New("usersig: empty secret key")
	case identifier == "":
		return "", errors.New("usersig: empty identifier")
	case expire < time.Second:
		return "", errors.New("usersig: expire must be at least one second")
	}
	doc := sigDoc{
		Ver:        "2.0",
		Identifier: identifier,
		SDKAppID:   sdkAppID,
		Expire:     int64(expire / time.Second),
		Time:       now.Unix(),
	}
	doc.Sig = hmacSig(key, &doc)

	var js bytes.Buffer
	if err := json.NewEncoder(&js).Encode(&doc); err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.NoCompression)
	if err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	if _, err := zw.Write(js.Bytes()); err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	return sigEncoding.EncodeToString(z.Bytes()), nil
}

// hmacSig is TLS.sig: standard base64 of HMAC-SHA256 over the content lines.
func hmacSig(key string, d *sigDoc) string {
	var b strings.Builder
	b.WriteString("TLS.identifier:")
	b.WriteString(d.Identifier)
	b.WriteString("\nTLS.sdkappid:")
	b.WriteString(strconv.FormatInt(d.SDKAppID, 10))
	b.WriteString("\nTLS.time:")
	b.WriteString(strconv.FormatInt(d.Time, 10))
	b.WriteString("\nTLS.expire:")
	b.WriteString(strconv.FormatInt(d.Expire, 10))
	b.WriteString("\n")
	if d.UserBuf != "" {
		b.WriteString("TLS.userbuf:")
		b.WriteString(d.UserBuf)
		b.WriteString("\n")
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SigInfo is what a verified UserSig says.
type SigInfo struct {
	Identifier string
	SDKAppID   int64
	Issued     time.Time     // TLS.time
	Expire     time.Duration // TLS.expire
}

// Expires is the last instant at which the sig is still valid.
func (s SigInfo) Expires() time.Time { return s.Issued.Add(s.Expire) }

// maxSigJSON bounds inflation of an untrusted sig (a zlib bomb).
const maxSigJSON = 64 << 10

// VerifyUserSig checks usersig the way the IM server evidently does: it
// decodes, inflates and parses the document, whatever its byte layout, and
// recomputes the HMAC. The sig is valid while now ≤ TLS.time + TLS.expire.
func VerifyUserSig(sdkAppID int64, key, identifier, usersig string, now time.Time) (SigInfo, error) {
	raw, err := sigEncoding.DecodeString(usersig)
	if err != nil {
		return SigInfo{}, fmt.Errorf("%w: %v", ErrSigMalformed, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return SigInfo{}, fmt.Errorf("%w: %v", ErrSigMalformed, err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxSigJSON+1))
	if err != nil {
		return SigInfo{}, fmt.Errorf("%w: %v", ErrSigMalformed, err)
	}
	if len(js) > maxSigJSON {
		return SigInfo{}, fmt.Errorf("%w: document too large", ErrSigMalformed)
	}
	var doc sigDoc
	if err := json.Unmarshal(js, &doc); err != nil {
		return SigInfo{}, fmt.Errorf("%w: %v", ErrSigMalformed, err)
	}
	if doc.Ver != "2.0" || doc.Sig == "" {
		return SigInfo{}, fmt.Errorf("%w: version %q", ErrSigMalformed, doc.Ver)
	}
	info := SigInfo{
		Identifier: doc.Identifier,
		SDKAppID:   doc.SDKAppID,
		Issued:     time.Unix(doc.Time, 0),
		Expire:     time.Duration(doc.Expire) * time.Second,
	}
	if doc.SDKAppID != sdkAppID {
		return info, ErrSigSDKAppID
	}
	if doc.Identifier != identifier {
		return info, ErrSigIdentifier
	}
	if !hmac.Equal([]byte(hmacSig(key, &doc)), []byte(doc.Sig)) {
		return info, ErrSigMismatch
	}
	if now.Unix() > doc.Time+doc.Expire {
		return info, ErrSigExpired
	}
	return info, nil
}

// Signer hands out the UserSig of admin identities, generating each once
// and reusing it until it is due for renewal. It is safe for concurrent use.
//
// Renewal: a cached sig is replaced once less than a tenth of its validity
// remains (18 days of the default 180), so even a process that runs for
// months, or a clock that drifts by days, never presents an expired sig.
// It is also replaced when the clock has gone back more than a minute before
// its issue time (the server might see it as issued in the future), and at
// once after Invalidate.
type Signer struct {
	sdkAppID int64
	key      string
	expire   time.Duration
	clock    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedSig
}

type cachedSig struct {
	sig    string
	issued time.Time
}

// NewSigner returns a Signer. expire ≤ 0 means DefaultSigExpire; clock nil
// means time.Now.
func NewSigner(sdkAppID int64, key string, expire time.Duration, clock func() time.Time) *Signer {
	if expire <= 0 {
		expire = DefaultSigExpire
	}
	if clock == nil {
		clock = time.Now
	}
	return &Signer{sdkAppID: sdkAppID, key: key, expire: expire, clock: clock, cache: make(map[string]cachedSig)}
}

// Sig returns a valid UserSig for identifier.
func (s *Signer) Sig(identifier string) (string, error) {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[identifier]; ok && s.fresh(c, now) {
		return c.sig, nil
	}
	sig, err := GenUserSig(s.sdkAppID, s.key, identifier, s.expire, now)
	if err != nil {
		return "", err
	}
	s.cache[identifier] = cachedSig{sig: sig, issued: now}
	return sig, nil
}

func (s *Signer) fresh(c cachedSig, now time.Time) bool {
	if now.Before(c.issued.Add(-time.Minute)) {
		return false
	}
	return c.issued.Add(s.expire).Sub(now) >= s.expire/10
}

// Invalidate drops the cached sig of identifier if it is still rejected, so
// the next Sig generates a new one. Passing the rejected sig keeps many
// concurrent calls that saw the same rejection from discarding a sig that
// one of them has just renewed.
func (s *Signer) Invalidate(identifier, rejected string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[identifier]; ok && (rejected == "" || c.sig == rejected) {
		delete(s.cache, identifier)
	}
}
