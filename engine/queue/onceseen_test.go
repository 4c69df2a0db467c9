package queue

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A key claimed before says when and by which callback; a long callback ID
// is kept clipped, and a value stored before claims carried the callback
// (a token alone) still reads, with the time only.
func TestOnceBySaysWhoClaimed(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	if first, _, err := q.OnceBy(ctx, "alice|bob", time.Hour, "cb-first"); err != nil || !first {
		t.Fatalf("first claim = %v, %v", first, err)
	}
	first, seen, err := q.OnceBy(ctx, "alice|bob", time.Hour, "cb-second")
	if err != nil || first || seen.CallbackID != "cb-first" || seen.At.Before(before) || seen.At.After(time.Now()) {
		t.Fatalf("second claim = %v, %+v, %v", first, seen, err)
	}

	long := strings.Repeat("x", 10*maxOnceCallbackID)
	if first, _, err := q.OnceBy(ctx, "long", time.Hour, long); err != nil || !first {
		t.Fatalf("long claim = %v, %v", first, err)
	}
	if _, seen, _ := q.OnceBy(ctx, "long", time.Hour, "cb"); seen.CallbackID != long[:maxOnceCallbackID] {
		t.Fatalf("long callback ID read back as %d bytes", len(seen.CallbackID))
	}

	b, err := q.bucket(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Create(ctx, onceKey("old"), []byte("3w5e11264sgsf")); err != nil {
		t.Fatal(err)
	}
	if first, seen, err := q.OnceBy(ctx, "old", time.Hour, "cb"); err != nil || first || seen.CallbackID != "" || seen.At.IsZero() {
		t.Fatalf("claim of an old-format key = %v, %+v, %v", first, seen, err)
	}
}
