package state

import (
	"math/rand/v2"
	"testing"
)

// TestHashSetAgreesWithAMap adds and removes random hashes, many of them
// in one probe run (a tiny key space masked into few slots), and holds
// the set to a map after every step.
func TestHashSetAgreesWithAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := newHashSet()
	want := map[uint64]bool{}
	for step := range 200_000 {
		h := uint64(r.IntN(3000)+1) << (r.IntN(2) * 40) // collide on the low bits too
		if r.IntN(3) == 0 {
			if got := s.remove(h); got != want[h] {
				t.Fatalf("step %d: remove(%d) = %t, want %t", step, h, got, want[h])
			}
			delete(want, h)
		} else {
			if got := s.add(h); got == want[h] {
				t.Fatalf("step %d: add(%d) = %t, want %t", step, h, got, !want[h])
			}
			want[h] = true
		}
		if s.n != len(want) {
			t.Fatalf("step %d: n = %d, want %d", step, s.n, len(want))
		}
	}
	for h := uint64(1); h <= 3000; h++ {
		for _, v := range []uint64{h, h << 40} {
			if s.has(v) != want[v] {
				t.Fatalf("has(%d) = %t, want %t", v, s.has(v), want[v])
			}
		}
	}
}

func TestHashSetMillionIn16MiB(t *testing.T) {
	s := newHashSet()
	for i := range 1_000_000 {
		s.add(hashOf("user_" + itoa(i)))
	}
	if s.n != 1_000_000 {
		t.Fatalf("n = %d", s.n)
	}
	if s.bytes() > 16<<20 {
		t.Fatalf("a million members take %d bytes, want at most 16 MiB", s.bytes())
	}
	if !s.has(hashOf("user_123456")) || s.has(hashOf("user_1000001")) {
		t.Fatal("membership wrong")
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

func BenchmarkHashSetHasMillion(b *testing.B) {
	s := newHashSet()
	for i := range 1_000_000 {
		s.add(hashOf("user_" + itoa(i)))
	}
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		if s.has(hashOf("user_" + itoa(i%2_000_000))) {
			n++
		}
	}
	_ = n
}
