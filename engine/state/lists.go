package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lists are the operator-managed lists of one namespace: their members
// live in a JetStream key-value bucket, spread over numShards keys a list
// (shard.go), and every replica keeps an in-memory set of the members'
// 64-bit hashes that a watch of the bucket keeps current. A check (Contains) reads only that
// set: constant time, no I/O on the reply path, about 16 MiB per million
// members; a change made through any replica reaches every other replica's
// set as fast as JetStream delivers it (milliseconds).
//
// Keys (bucket <namespace>_lists):
//
//	NAME._gen           the generation rules read, a decimal number (none: 0)
//	NAME._next          the generation an import with --replace is writing
//	NAME.GEN.SHARD      the members of generation GEN whose shard is SHARD,
//	                    sorted, one a line
//
// A replace writes the new members under a fresh generation while the
// rules keep reading the current one, then moves NAME._gen to it: one
// write, seen by each replica only after every member before it (a watch
// delivers in stream order), so the rules see the old list or the new one,
// never a half-written one. The old generation is then purged.
type Lists struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	bucket string
	log    *slog.Logger
	cfg    ListsConfig

	mu     sync.RWMutex
	lists  map[string]*memList
	synced bool
	err    error // why the watch stopped; nil while it runs

	seen atomic.Uint64 // the last revision the watch applied

	stop   context.CancelFunc
	done   chan struct{}
	writes sync.Mutex // one replace at a time per replica
}

// ListsConfig configures OpenLists.
type ListsConfig struct {
	JetStream jetstream.JetStream
	Namespace string // the bucket is <Namespace>_lists
	Replicas  int    // bucket replicas [1]
	Logger    *slog.Logger
	// Changed, when set, is called after every change made through this
	// replica: the list, the operation (add, remove, replace) and the
	// members written. It feeds the metric.
	Changed func(list, op string, n int)
}

// memList is one list in a replica's memory: its shards' sets by
// generation. gen is the generation rules read; a higher generation is an
// import under way (next).
type memList struct {
	gen, next uint64
	gens      map[uint64]*genSets
}

// genSets are one generation's members: a hash set per shard.
type genSets struct {
	shards map[uint32]*hashSet
	n      int
}

func (m *memList) generation(gen uint64) *genSets {
	g := m.gens[gen]
	if g == nil {
		g = &genSets{shards: map[uint32]*hashSet{}}
		m.gens[gen] = g
	}
	return g
}

func (g *genSets) has(member string) bool {
	s := g.shards[shardOf(member)]
	return s != nil && s.has(hashOf(member))
}

func (g *genSets) bytes() int {
	n := 0
	for _, s := range g.shards {
		n += s.bytes()
	}
	return n
}

// MaxMemberBytes bounds one member: Tencent IM's UserID is at most 32
// bytes; the rest is room for other account schemes.
const MaxMemberBytes = 128

// nameRE is what a list name may be: one key token, readable in URLs.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckName returns an error saying what is wrong with a list name, or nil.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("list name %q: want 1 to 64 of A-Z, a-z, 0-9, '_' and '-'", name)
	}
	return nil
}

// CheckMember returns an error saying what is wrong with a member, or nil.
func CheckMember(m string) error {
	switch {
	case m == "":
		return errors.New("empty member")
	case len(m) > MaxMemberBytes:
		return fmt.Errorf("member %.20q…: longer than %d bytes", m, MaxMemberBytes)
	case strings.ContainsFunc(m, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("member %q: holds a control character", m)
	}
	return nil
}

// ErrNotSynced is returned by Contains until the replica has read every
// member of the bucket once.
var ErrNotSynced = errors.New("lists are still loading")

// OpenLists creates the bucket if needed and starts watching it. It does
// not wait for the members to load: Ready says when they have.
func OpenLists(ctx context.Context, cfg ListsConfig) (*Lists, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	l := &Lists{js: cfg.JetStream, cfg: cfg, bucket: cfg.Namespace + "_lists", lists: map[string]*memList{},
		log: log.With("component", "lists"), done: make(chan struct{})}
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.bucket,
		Description: "friendflow lists: each list in 4096 shards of members",
		History:     1,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lists: bucket %s: %w", l.bucket, err)
	}
	l.kv = kv
	if l.stream, err = l.js.Stream(ctx, "KV_"+l.bucket); err != nil {
		return nil, fmt.Errorf("lists: stream of bucket %s: %w", l.bucket, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("lists: watch %s: %w", l.bucket, err)
	}
	l.stop = cancel
	go l.watch(w)
	return l, nil
}

// Close stops the watch.
func (l *Lists) Close() {
	l.stop()
	<-l.done
}

func (l *Lists) watch(w jetstream.KeyWatcher) {
	defer close(l.done)
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			l.mu.Lock()
			l.synced = true
			l.mu.Unlock()
			l.log.Info("lists loaded", "lists", len(l.Summary()))
			continue
		}
		l.apply(e.Key(), e.Value(), e.Operation() != jetstream.KeyValuePut)
		l.seen.Store(e.Revision())
	}
	l.mu.Lock()
	if l.err == nil {
		l.err = errors.New("lists: the watch of the bucket stopped")
	}
	l.mu.Unlock()
}

// apply is one entry of the watch: a shard written or purged, or a
// generation moved.
func (l *Lists) apply(key string, value []byte, deleted bool) {
	name, rest, ok := strings.Cut(key, ".")
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.lists[name]
	if m == nil {
		m = &memList{gens: map[uint64]*genSets{}}
		l.lists[name] = m
	}
	switch rest {
	case "_gen":
		g, _ := strconv.ParseUint(string(value), 10, 64)
		m.gen = g
		for k := range m.gens {
			if k < g {
				delete(m.gens, k) // the old generation, purged after this write
			}
		}
		return
	case "_next":
		n, _ := strconv.ParseUint(string(value), 10, 64)
		m.next = n
		for k := range m.gens {
			if k > m.gen && k != n {
				delete(m.gens, k) // an import that stopped half way
			}
		}
		return
	}
	gs, ss, ok := strings.Cut(rest, ".")
	g, err1 := strconv.ParseUint(gs, 10, 64)
	shard, err2 := strconv.ParseUint(ss, 10, 32)
	if !ok || err1 != nil || err2 != nil || g < m.gen {
		return
	}
	gen := m.generation(g)
	if old := gen.shards[uint32(shard)]; old != nil {
		gen.n -= old.n
		delete(gen.shards, uint32(shard))
	}
	if deleted || len(value) == 0 {
		return
	}
	members := splitMembers(value)
	set := newHashSetFor(len(members))
	for _, mb := range members {
		set.add(hashOf(mb))
	}
	gen.shards[uint32(shard)] = set
	gen.n += set.n
}

// Ready is nil once every member of the bucket has been read once, and
// while the watch runs.
func (l *Lists) Ready() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.err != nil {
		return l.err
	}
	if !l.synced {
		return ErrNotSynced
	}
	return nil
}

// WaitReady waits until Ready is nil or ctx is done.
func (l *Lists) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := l.Ready(); err == nil || !errors.Is(err, ErrNotSynced) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lists: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Contains reports whether member is in the list named name, from this
// replica's memory (see hashSet for what a hash hit means). A list
// nobody has written to is empty.
func (l *Lists) Contains(name, member string) (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.synced {
		if l.err != nil {
			return false, l.err
		}
		return false, ErrNotSynced
	}
	m := l.lists[name]
	if m == nil {
		return false, nil
	}
	g := m.gens[m.gen]
	return g != nil && g.has(member), nil
}

// Has reports whether member is in the list, from the bucket itself.
func (l *Lists) Has(ctx context.Context, name, member string) (bool, error) {
	if err := l.check(name, member); err != nil {
		return false, err
	}
	e, err := l.kv.Get(ctx, shardKey(name, l.gen(name), shardOf(member)))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lists: get: %w", err)
	}
	_, found := slices.BinarySearch(splitMembers(e.Value()), member)
	return found, nil
}

func (l *Lists) check(name, member string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	return CheckMember(member)
}

// gen is the generation this replica reads for name.
func (l *Lists) gen(name string) uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if m := l.lists[name]; m != nil {
		return m.gen
	}
	return 0
}

// Summary is one list as a replica holds it.
type Summary struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
	// Importing is the number of members a replace under way has
	// written so far; 0 when none is.
	Importing int `json:"importing,omitempty"`
	Bytes     int `json:"bytes"` // this replica's memory for the list's sets
}

// Summary lists every list this replica holds, by name.
func (l *Lists) Summary() []Summary {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Summary, 0, len(l.lists))
	for _, name := range slices.Sorted(maps.Keys(l.lists)) {
		m := l.lists[name]
		s := Summary{Name: name}
		for g, gen := range m.gens {
			s.Bytes += gen.bytes()
			switch {
			case g == m.gen:
				s.Members = gen.n
			case g > m.gen:
				s.Importing = gen.n
			}
		}
		out = append(out, s)
	}
	return out
}

// Members is one list's size on this replica; ok is false for a list
// nobody has written to.
func (l *Lists) Members(name string) (n int, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	m := l.lists[name]
	if m == nil {
		return 0, false
	}
	if g := m.gens[m.gen]; g != nil {
		n = g.n
	}
	return n, true
}
