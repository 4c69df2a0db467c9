package state

import "hash/maphash"

// hashSet is a set of 64-bit hashes of members: open addressing with
// linear probing over a power-of-two table, kept at most 3/4 full, so a
// million members take a table of 2^21 slots, 16 MiB, where a
// map[string]struct{} of the same accounts took about 80 MiB. 0 marks an
// empty slot; a member whose hash is 0 is stored as 1.
//
// A hash stands for its member: two members with one hash would be
// confused. With 64 bits and n members, a member that is not in the set
// is taken for one with probability about n/2^64 (5e-14 for a million),
// and the seed is random per process, so nobody can pick an account name
// that collides on purpose.
type hashSet struct {
	slots []uint64
	n     int
}

// seed is this process's hash seed: every replica builds its own sets.
var seed = maphash.MakeSeed()

func hashOf(member string) uint64 {
	h := maphash.String(seed, member)
	if h == 0 {
		h = 1
	}
	return h
}

const minSlots = 16

func newHashSet() *hashSet { return &hashSet{slots: make([]uint64, minSlots)} }

// newHashSetFor is a set sized for n members.
func newHashSetFor(n int) *hashSet {
	size := minSlots
	for size*3 < (n+1)*4 {
		size *= 2
	}
	return &hashSet{slots: make([]uint64, size)}
}

func (s *hashSet) has(h uint64) bool {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// add inserts h; it reports whether h was new.
func (s *hashSet) add(h uint64) bool {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, len(old)*2)
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// remove deletes h, shifting back the entries of its probe run so that
// no tombstone is left (Knuth's algorithm R for linear probing): lookups
// stay as fast after many removals as before.
func (s *hashSet) remove(h uint64) bool {
	mask := uint64(len(s.slots) - 1)
	i := h & mask
	for {
		switch s.slots[i] {
		case 0:
			return false
		case h:
			s.n--
			s.shiftBack(i, mask)
			return true
		}
		i = (i + 1) & mask
	}
}

func (s *hashSet) shiftBack(hole, mask uint64) {
	j := hole
	for {
		j = (j + 1) & mask
		h := s.slots[j]
		if h == 0 {
			s.slots[hole] = 0
			return
		}
		home := h & mask
		// Move h into the hole unless its home lies cyclically in
		// (hole, j]: then the hole is not on its probe path.
		if (j > hole && (home <= hole || home > j)) || (j < hole && (home <= hole && home > j)) {
			s.slots[hole] = h
			hole = j
		}
	}
}

// bytes is the set's table size.
func (s *hashSet) bytes() int { return len(s.slots) * 8 }
