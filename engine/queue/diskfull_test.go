package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// tmpfsDir mounts a tmpfs of size bytes on a new directory, unmounted when
// the test ends. It needs root (CAP_SYS_ADMIN); the test is skipped
// otherwise.
func tmpfsDir(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (a real full filesystem); .ci/run runs as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// The last partial blocks too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	return path
}

// TestStoreFullFailsFastAndRecovers fills the filesystem of a real
// embedded store: enqueues fail well inside Tencent's 2 s, Ready says why,
// and once space is freed the store recovers without a restart, the jobs
// accepted before and after run, and the stats are true again.
func TestStoreFullFailsFastAndRecovers(t *testing.T) {
	// The dead letters' byte limit is reserved from the store's room (75%
	// of the free space): the smallest limit fits in 48 MiB.
	dir := tmpfsDir(t, "48m")
	s := newScript()
	q := openTest(t, filepath.Join(dir, "data"), s, func(c *Config) { c.DeadMaxBytes = 16 << 20 })
	runTest(t, q)

	enqueue(t, q, "cb-before", mkJob("before", "ok"))
	eventually(t, 5*time.Second, "job before", func() bool { return s.doneCount("before") == 1 })

	filler := fill(t, dir)
	// The first writes after the disk filled may still be taken (the file
	// store writes behind the ack); keep enqueueing until the fault shows.
	var err error
	for i := 0; err == nil; i++ {
		if i == 50 {
			t.Fatal("50 enqueues on a full disk all succeeded")
		}
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = q.Enqueue(ctx, fmt.Sprintf("cb-full-%d", i), []Job{mkJob(fmt.Sprintf("full-%d", i), "ok")})
		cancel()
		if took := time.Since(began); took > 1500*time.Millisecond {
			t.Fatalf("enqueue on a full disk took %v (%v)", took, err)
		}
	}
	if !errors.Is(err, ErrStoreFault) {
		t.Fatalf("enqueue on a full disk: %v, want a store fault", err)
	}
	rerr := q.Ready()
	if !errors.Is(rerr, ErrStoreFault) {
		t.Fatalf("Ready on a full disk: %v", rerr)
	}
	t.Logf("full disk: enqueue %v; ready %v", err, rerr)
	began := time.Now()
	if err := q.Enqueue(context.Background(), "cb-again", []Job{mkJob("again", "ok")}); !errors.Is(err, ErrStoreFault) || time.Since(began) > 100*time.Millisecond {
		t.Fatalf("a known fault: %v after %v, want an immediate store fault", err, time.Since(began))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the store recovered", func() bool { return q.Ready() == nil })
	enqueue(t, q, "cb-after", mkJob("after", "ok"))
	eventually(t, 10*time.Second, "job after", func() bool { return s.doneCount("after") == 1 })
	eventually(t, 10*time.Second, "stats back to zero", func() bool { return drained(t, q) })
}

// JetStream refusing a write for want of storage is not retried: the
// callback fails at once instead of waiting out the retries.
func TestOutOfResourcesIsNotRetried(t *testing.T) {
	for _, code := range []jetstream.ErrorCode{10023, 10047, 10028} {
		err := fmt.Errorf("publish: %w", &jetstream.APIError{Code: 503, ErrorCode: code, Description: "insufficient resources"})
		if !outOfResources(err) || retryable(err) {
			t.Errorf("error code %d: out of resources %v, retryable %v", code, outOfResources(err), retryable(err))
		}
	}
	if err := (&jetstream.APIError{Code: 503, ErrorCode: 10008}); outOfResources(err) || !retryable(err) {
		t.Error("another 503 is not a full store, and is retried")
	}
}
