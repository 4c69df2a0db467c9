package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// cgroupRoot lays files out under a temporary directory as they are under
// /sys/fs/cgroup.
func cgroupRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestContainerLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		file  string
		err   string
	}{
		{"v2 limit", map[string]string{"memory.max": "134217728\n", "memory.current": "1000\n"}, 128 << 20, "memory.max", ""},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, 0, "memory.max", ""},
		{"v2 wins over v1", map[string]string{"memory.max": "268435456\n", "memory/memory.limit_in_bytes": "134217728\n"}, 256 << 20, "memory.max", ""},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "201326592\n", "cpu/cpu.shares": "1024\n"}, 192 << 20, "memory/memory.limit_in_bytes", ""},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, "memory/memory.limit_in_bytes", ""},
		{"no cgroup files", map[string]string{"cpu.max": "max 100000\n"}, 0, "", ""},
		{"garbage", map[string]string{"memory.max": "lots\n"}, 0, "memory.max", `holds "lots"`},
		{"zero", map[string]string{"memory.max": "0\n"}, 0, "memory.max", `holds "0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := cgroupRoot(t, tc.files)
			got, file, err := ContainerLimit(root)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantFile := ""
			if tc.file != "" {
				wantFile = filepath.Join(root, tc.file)
			}
			if got != tc.want || file != wantFile {
				t.Errorf("got %d from %q, want %d from %q", got, file, tc.want, wantFile)
			}
		})
	}
}

// TestDerive sets the process's memory limit: it restores it after.
func TestDerive(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	noEnv := func(string) string { return "" }

	root := cgroupRoot(t, map[string]string{"memory.max": "134217728\n"})
	c, err := Derive(root, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	const want = 67108864 // half of 128 MiB
	if c.Limit != want || c.Container != 128<<20 || debug.SetMemoryLimit(-1) != want {
		t.Errorf("derived %+v, runtime limit %d; want %d", c, debug.SetMemoryLimit(-1), want)
	}

	// GOMEMLIMIT set: the runtime's own value stands.
	debug.SetMemoryLimit(50 << 20)
	c, err = Derive(root, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "50MiB"
		}
		return ""
	})
	if err != nil || c.From != "GOMEMLIMIT" || c.Limit != 50<<20 || debug.SetMemoryLimit(-1) != 50<<20 {
		t.Errorf("with GOMEMLIMIT: %+v, %v, runtime limit %d", c, err, debug.SetMemoryLimit(-1))
	}

	for name, files := range map[string]map[string]string{
		"no limit":  {"memory.max": "max\n"},
		"too small": {"memory.max": "33554432\n"},
		"no cgroup": {},
	} {
		debug.SetMemoryLimit(before)
		c, err := Derive(cgroupRoot(t, files), noEnv)
		if err != nil || c.Limit != 0 || c.Why == "" || debug.SetMemoryLimit(-1) != before {
			t.Errorf("%s: %+v, %v, runtime limit %d (was %d)", name, c, err, debug.SetMemoryLimit(-1), before)
		}
	}

	if _, err := Derive(cgroupRoot(t, map[string]string{"memory.max": "-1\n"}), noEnv); err == nil {
		t.Error("a negative limit is not an error")
	}
}
