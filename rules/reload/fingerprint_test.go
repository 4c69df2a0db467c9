package reload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFingerprint(t *testing.T) {
	dir := wtRulesDir(t)
	base, err := Fingerprint(dir)
	wtMust(t, err)
	if len(base) != 64 {
		t.Fatalf("fingerprint %q is not hex SHA-256", base)
	}
	same := func(what string, want bool) {
		t.Helper()
		got, err := Fingerprint(dir)
		wtMust(t, err)
		if (got == base) != want {
			t.Errorf("%s: fingerprint equal = %v, want %v", what, got == base, want)
		}
	}
	wtWrite(t, filepath.Join(dir, "z.txt"), "x")
	wtWrite(t, filepath.Join(dir, ".z.yaml"), "x")
	wtWrite(t, filepath.Join(dir, "..2026_11_25"), "x")
	wtWrite(t, filepath.Join(dir, "c.yaml~"), "x")
	wtMust(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	wtWrite(t, filepath.Join(dir, "sub", "c.yaml"), "x")
	wtMust(t, os.Mkdir(filepath.Join(dir, "dir.yaml"), 0o755))
	same("ignored entries", true)

	// Rewriting identical content and touching change nothing.
	wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 0\n")
	now := time.Now().Add(time.Hour)
	wtMust(t, os.Chtimes(filepath.Join(dir, "b.yml"), now, now))
	same("same content", true)

	// The extension is matched in any case, as the loader does.
	wtWrite(t, filepath.Join(dir, "UPPER.YML"), "u: 1\n")
	same("upper-case extension", false)
	wtMust(t, os.Remove(filepath.Join(dir, "UPPER.YML")))
	same("upper-case file removed", true)

	// Names count, not only contents: swapping contents changes it.
	wtWrite(t, filepath.Join(dir, "a.yaml"), "b: 0\n")
	wtWrite(t, filepath.Join(dir, "b.yml"), "a: 0\n")
	same("swapped contents", false)
	wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 0\n")
	wtWrite(t, filepath.Join(dir, "b.yml"), "b: 0\n")
	same("restored", true)

	// Content moved between files of the same total bytes changes it.
	wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 0\nb")
	wtWrite(t, filepath.Join(dir, "b.yml"), ": 0\n")
	same("boundary moved", false)
	wtWrite(t, filepath.Join(dir, "a.yaml"), "a: 0\n")
	wtWrite(t, filepath.Join(dir, "b.yml"), "b: 0\n")

	// Symlinks are followed: the content behind them counts.
	other := filepath.Join(t.TempDir(), "target")
	wtWrite(t, other, "l: 1\n")
	wtMust(t, os.Symlink(other, filepath.Join(dir, "l.yaml")))
	withLink, err := Fingerprint(dir)
	wtMust(t, err)
	wtWrite(t, other, "l: 2\n")
	if fp, _ := Fingerprint(dir); fp == withLink {
		t.Error("content behind a symlink not fingerprinted")
	}

	// A dangling link and a FIFO do not fail the whole fingerprint, and a
	// FIFO is not opened (that would block).
	wtMust(t, os.Remove(other))
	if _, err := Fingerprint(dir); err != nil {
		t.Errorf("dangling link failed the fingerprint: %v", err)
	}
	wtMust(t, syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644))
	if _, err := Fingerprint(dir); err != nil {
		t.Errorf("FIFO failed the fingerprint: %v", err)
	}

	// A single file is accepted, whatever its name.
	single := filepath.Join(t.TempDir(), "rules.conf")
	wtWrite(t, single, "a: 0\n")
	fp1, err := Fingerprint(single)
	wtMust(t, err)
	wtWrite(t, single, "a: 1\n")
	if fp2, _ := Fingerprint(single); fp2 == fp1 {
		t.Error("single file content change not seen")
	}

	if _, err := Fingerprint(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path: no error")
	}
}

// TestFingerprintClosesFiles counts this process's open descriptors around
// many fingerprints: none may stay open (Benthos kept a handle and missed
// ConfigMap swaps for minutes).
func TestFingerprintClosesFiles(t *testing.T) {
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	dir := wtRulesDir(t)
	for i := range 20 {
		wtWrite(t, filepath.Join(dir, fmt.Sprintf("r%02d.yaml", i)), "r: 1\n")
	}
	count := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		wtMust(t, err)
		return len(fds)
	}
	before := count()
	for range 200 {
		if _, err := Fingerprint(dir); err != nil {
			t.Fatal(err)
		}
	}
	if after := count(); after > before {
		t.Fatalf("open descriptors %d -> %d", before, after)
	}
}

func BenchmarkFingerprint(b *testing.B) {
	dir := b.TempDir()
	rule := strings.Repeat("- id: welcome\n  when: Event.From_Account != ''\n", 50) // about 2.5 KiB
	for i := range 20 {
		wtWrite(b, filepath.Join(dir, fmt.Sprintf("r%02d.yaml", i)), rule)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Fingerprint(dir); err != nil {
			b.Fatal(err)
		}
	}
}
