package main

import (
	"os"
	"strings"
	"testing"
)

// TestImageShipsNoRules reads the Dockerfile's final stage: it copies the
// binary and the data directory from the build stage and nothing else, so
// a forgotten rules mount fails the start (TestServeMissingRules) instead
// of serving the example rules to real users. The image is not built here
// (no Docker engine), so its file is what can be checked.
func TestImageShipsNoRules(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	final := 0
	for i, l := range lines {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(l)), "FROM ") {
			final = i
		}
	}
	copies := 0
	for i, l := range lines[final:] {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.EqualFold(f[0], "COPY") {
			continue
		}
		copies++
		if !strings.Contains(l, "--from=build") || strings.Contains(l, "rules") || strings.Contains(l, "examples") {
			t.Errorf("Dockerfile:%d: the final stage copies %q; it may copy only the binary and the data directory from the build stage", final+i+1, strings.TrimSpace(l))
		}
	}
	if copies != 2 {
		t.Errorf("the final stage has %d COPY lines; want 2 (the binary, the data directory)", copies)
	}
	if _, err := os.Stat("../../.dockerignore"); err != nil {
		t.Errorf("no .dockerignore: %v", err)
	}
}
