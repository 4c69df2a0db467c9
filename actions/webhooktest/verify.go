// Package webhooktest is a receiver's side of the Standard Webhooks
// signature, written for the tests from the specification alone
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
// "Signature scheme", "Webhook headers", "Verifying signatures"), and
// sharing no code with the signer in actions: a test that signs with one
// and verifies with the other checks friendflow against the specification,
// not against itself.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far webhook-timestamp may be from the receiver's clock,
// the five minutes of the specification's reference libraries.
const Tolerance = 5 * time.Minute

// Verifier holds a receiver's secrets, serialized as the specification
// presents them: "whsec_" and the base64 of the key.
type Verifier struct {
	keys [][]byte
}

// NewVerifier decodes whsec_ secrets. Any of them verifies a request.
func NewVerifier(secrets ...string) (*Verifier, error) {
	v := &Verifier{}
	for _, s := range secrets {
		b64, ok := strings.CutPrefix(s, "whsec_")
		if !ok {
			return nil, errors.New("a symmetric secret is serialized as whsec_<base64>")
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("secret: bad base64: %v", err)
		}
		v.keys = append(v.keys, key)
	}
	return v, nil
}

// Verify checks one request as a receiver does: the three headers present,
// the timestamp within Tolerance of now, and one of the space-separated
// "v1," signatures equal (in constant time) to the base64 HMAC-SHA256 of
// "id.timestamp.body" under one of the keys. Signatures of other versions
// (v1a, asymmetric) are skipped, not errors.
func (v *Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if strings.Contains(id, ".") {
		return errors.New("webhook-id holds a '.', the signed content's separator")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not integer seconds", ts)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("webhook-timestamp is %v away from now", d)
	}
	content := []byte(id + "." + ts + "." + string(body))
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, key := range v.keys {
			m := hmac.New(sha256.New, key)
			m.Write(content)
			if hmac.Equal(got, m.Sum(nil)) {
				return nil
			}
		}
	}
	return errors.New("no signature matches")
}
