package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeReleasesAFailedStart: when the admin port is taken, serve fails
// with the listener's error and releases what it built (the callback
// port, the store); the next start on the same store runs, and stops in
// order when its context ends.
func TestServeReleasesAFailedStart(t *testing.T) {
	rulesDir, data := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(rulesDir, "greet.yaml"), adminTestRules)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	listen := freePort(t)
	config := func(admin string) *serveConfig {
		t.Helper()
		cfg, err := parseServe([]string{"--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
			"--rules", rulesDir, "--data", data, "--log-format", "text", "--shutdown-timeout", "5s"}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	noenv := func(string) string { return "" }

	var logs syncBuffer
	err = serve(context.Background(), config(taken.Addr().String()), &logs, &logs, noenv)
	if err == nil || !strings.HasPrefix(err.Error(), "admin listener: ") {
		t.Fatalf("serve with the admin port taken: %v", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("the callback port is still held after a failed start: %v", err)
	}
	ln.Close()

	logs = syncBuffer{}
	admin := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, config(admin), &logs, &logs, noenv) }()
	waitReady(t, admin)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after its context ended: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop\n%s", logs.String())
	}
	out := logs.String()
	started, stopping, stopped := strings.Index(out, "msg=\"friendflow started\""), strings.Index(out, "msg=\"stopping: signal received\""), strings.Index(out, "msg=\"friendflow stopped\"")
	if started < 0 || stopping < started || stopped < stopping {
		t.Fatalf("log lines out of order:\n%s", out)
	}
	if _, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		t.Error("admin listener still open after serve returned")
	}
}
