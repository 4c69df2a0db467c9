package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxRSS is the peak resident memory of a finished child, in bytes (Linux
// reports ru_maxrss in KiB: getrusage(2)).
func maxRSS(t *testing.T, ps *os.ProcessState) int64 {
	t.Helper()
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this platform")
	}
	return ru.Maxrss << 10
}

// The alias bombs of issue 13 (up to 9^9 strings in under 500 bytes) fail
// lint at once, with file:line:col, in little memory.
func TestLintAliasBomb(t *testing.T) {
	for _, name := range []string{"aliasbomb-7.yaml", "aliasbomb-9.yaml"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("..", "..", "rules", "testdata", name)
			cmd := exec.Command(binary, "lint", file)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Fatalf("lint exit %d (%v); want 1:\n%s", code, err, &out)
			}
			want := file + ":12:16: the file has more than 100000 YAML nodes"
			if !strings.Contains(out.String(), want) {
				t.Errorf("lint output:\n%s\nwant %s…", &out, want)
			}
			// CPU time, not wall time: other tests share the machine.
			ps := cmd.ProcessState
			if cpu := ps.UserTime() + ps.SystemTime(); cpu > time.Second {
				t.Errorf("lint took %s of CPU; want < 1s", cpu)
			}
			if rss := maxRSS(t, ps); rss > 100<<20 {
				t.Errorf("lint peaked at %d MiB; want < 100 MiB", rss>>20)
			}
		})
	}
}

// serve with an alias bomb for rules starts, answers /readyz (not ready)
// and /rules (the error with its file:line:col), in little memory.
func TestServeAliasBomb(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "rules", "testdata", "aliasbomb-9.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bomb.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000"},
		"serve", "--listen", listen, "--admin-listen", admin, "--rules", dir, "--data", t.TempDir(), "--log-level", "warn")
	var status struct {
		Status struct {
			Failures  int    `json:"failures"`
			LastError string `json:"last_error"`
		} `json:"status"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for status.Status.Failures == 0 && time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/rules")
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /rules: %d %v", resp.StatusCode, err)
		}
	}
	want := "bomb.yaml:12:16: the file has more than 100000 YAML nodes"
	if !strings.Contains(status.Status.LastError, want) {
		t.Fatalf("/rules last_error %q; want …%s…\n%s", status.Status.LastError, want, p.logs())
	}
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d; want 503", resp.StatusCode)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
	if rss := maxRSS(t, p.cmd.ProcessState); rss > 100<<20 {
		t.Errorf("serve peaked at %d MiB; want < 100 MiB", rss>>20)
	}
}
