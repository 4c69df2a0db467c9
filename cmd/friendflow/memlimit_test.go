package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestDeriveMemoryLimitLogsOnce: serve derives GOMEMLIMIT from a cgroup
// v2 limit and says so in one log line; GOMEMLIMIT in the environment wins.
func TestDeriveMemoryLimitLogsOnce(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	oldRoot := cgroupRoot
	t.Cleanup(func() { debug.SetMemoryLimit(before); cgroupRoot = oldRoot })
	cgroupRoot = t.TempDir()
	if err := os.WriteFile(filepath.Join(cgroupRoot, "memory.max"), []byte("268435456\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	deriveMemoryLimit(log, func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != 134217728 { // half of 256 MiB
		t.Errorf("runtime memory limit %d, want 134217728", got)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "gomemlimit_bytes=134217728") || !strings.Contains(out, "container_limit_bytes=268435456") {
		t.Errorf("log:\n%s", out)
	}

	buf.Reset()
	debug.SetMemoryLimit(100 << 20)
	deriveMemoryLimit(log, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "100MiB"
		}
		return ""
	})
	if got := debug.SetMemoryLimit(-1); got != 100<<20 || !strings.Contains(buf.String(), "from GOMEMLIMIT") {
		t.Errorf("GOMEMLIMIT set: runtime limit %d, log %s", got, buf.String())
	}
}
