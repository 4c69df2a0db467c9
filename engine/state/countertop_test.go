package state

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/rules"
)

// TestTopKeys: the busiest keys of a counter in the real embedded
// JetStream, busiest first, a long key by its hash, and a scan cut short
// still sees the keys counted last.
func TestTopKeys(t *testing.T) {
	q := openQueue(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	c := NewCounters(q)
	ctr := rules.Counter{Name: "by_sender", Window: 10 * time.Minute}
	ctx := context.Background()
	now := time.Now()
	add := func(key string, n int) {
		t.Helper()
		for range n {
			if _, err := c.Add(ctx, ctr, key, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	top, err := c.TopKeys(ctx, ctr, 20, 0, now)
	if err != nil || len(top.Keys) != 0 || top.Total != 0 || top.Cut {
		t.Fatalf("empty counter: %+v %v", top, err)
	}
	for i := range 50 {
		add(fmt.Sprintf("quiet_%02d", i), 1)
	}
	long := strings.Repeat("x", 200)
	add(long, 4)
	add("eve", 7)
	add("", 2)
	add("mallory", 5)
	top, err = c.TopKeys(ctx, ctr, 3, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if top.Total != 54 || top.Examined != 54 || top.Cut {
		t.Fatalf("whole scan: %+v", top)
	}
	if got := fmt.Sprint(top.Keys); got != fmt.Sprintf("[{eve false 7} {mallory false 5} {%s true 4}]", KVKey(long)[1:]) {
		t.Fatalf("top 3: %s", got)
	}
	// A scan of 3 keys reads the 3 counted last: mallory, "" and eve.
	top, err = c.TopKeys(ctx, ctr, 2, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	if !top.Cut || top.Examined != 3 || top.Total != 54 || fmt.Sprint(top.Keys) != "[{eve false 7} {mallory false 5}]" {
		t.Fatalf("cut scan: %+v", top)
	}
	// A window later every key has left the window.
	top, err = c.TopKeys(ctx, ctr, 20, 0, now.Add(ctr.Window+time.Second))
	if err != nil || len(top.Keys) != 0 {
		t.Fatalf("a window later: %+v %v", top, err)
	}
}
