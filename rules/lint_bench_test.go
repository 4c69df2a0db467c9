package rules

import (
	"strings"
	"testing"
)

// BenchmarkLoadLintClean is BenchmarkLoad's 1 000 indexed rules written in
// the checked form (both spellings of each ClientCmd), so that no rule
// warns: the cost lint adds to every load, without the cost of formatting
// warnings, which BenchmarkLoad's rules (one spelling each) also pay.
func BenchmarkLoadLintClean(b *testing.B) {
	src := strings.ReplaceAll(genRules(1000, true), `["friend_add", "friend_response"]`, `["friend_add", "FriendAdd", "friend_response", "FriendResponse"]`)
	dir := writeFiles(b, map[string]string{"r.yaml": src})
	reg := testRegistry(b)
	s, err := Load(dir, Options{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if s.Len() != 1000 || len(s.Warnings()) != 0 {
		b.Fatalf("%d rules, %d warnings: %v", s.Len(), len(s.Warnings()), s.Warnings())
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir, Options{Registry: reg}); err != nil {
			b.Fatal(err)
		}
	}
}
