package state

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startServer runs an in-process JetStream server on loopback.
func startServer(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return ns.ClientURL()
}

// replica opens the lists as one replica of a deployment would: its own
// connection to the server.
func replica(t testing.TB, url string) *Lists {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := OpenLists(ctx, ListsConfig{JetStream: js, Namespace: "ff", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// within polls cond until it holds or d passes, and returns how long it
// took; it fails the test past d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func contains(t *testing.T, l *Lists, name, m string) bool {
	t.Helper()
	ok, err := l.Contains(name, m)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestTwoReplicasSeeAChangeWithinASecond: docs/rules.md's promise — a change through
// one replica is live on every replica within 1 s.
func TestTwoReplicasSeeAChangeWithinASecond(t *testing.T) {
	url := startServer(t)
	a, b := replica(t, url), replica(t, url)
	ctx := context.Background()
	if contains(t, b, "spammers", "eve") {
		t.Fatal("eve is in an empty list")
	}
	if _, err := a.Add(ctx, "spammers", MembersOf([]string{"eve", "mallory"})); err != nil {
		t.Fatal(err)
	}
	took := within(t, time.Second, "add seen by the other replica", func() bool { return contains(t, b, "spammers", "eve") })
	t.Logf("add seen by the other replica after %s", took)
	if contains(t, b, "spammers", "alice") || contains(t, b, "vips", "eve") {
		t.Fatal("a member leaked into another list or name")
	}
	if _, err := b.Remove(ctx, "spammers", MembersOf([]string{"eve"})); err != nil {
		t.Fatal(err)
	}
	took = within(t, time.Second, "remove seen by the other replica", func() bool { return !contains(t, a, "spammers", "eve") })
	t.Logf("remove seen by the other replica after %s", took)
	if !contains(t, a, "spammers", "mallory") {
		t.Fatal("remove took another member with it")
	}
	if ok, err := a.Has(ctx, "spammers", "mallory"); err != nil || !ok {
		t.Fatalf("Has(mallory) = %t, %v", ok, err)
	}
	if ok, err := a.Has(ctx, "spammers", "eve"); err != nil || ok {
		t.Fatalf("Has(eve) = %t, %v", ok, err)
	}

	// A replica started later reads what is there.
	c := replica(t, url)
	if !contains(t, c, "spammers", "mallory") || contains(t, c, "spammers", "eve") {
		t.Fatal("a new replica does not see the list as it is")
	}
}

// TestReplaceIsAllOrNothing: while a replace streams its members, the
// other replica still answers from the old list; afterwards, only from
// the new one; a replace that fails half way leaves the old list.
func TestReplaceIsAllOrNothing(t *testing.T) {
	url := startServer(t)
	a, b := replica(t, url), replica(t, url)
	ctx := context.Background()
	if _, err := a.Add(ctx, "l", MembersOf([]string{"old1", "old2"})); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "add", func() bool { return contains(t, b, "l", "old2") })

	defer func(n int) { maxBuffered = n }(maxBuffered)
	maxBuffered = 1000 // merge as the import goes: 2000 are written at the pause
	midway := make(chan struct{})
	resume := make(chan struct{})
	members := func(yield func(string, error) bool) {
		for i := range 3000 {
			if i == 2500 {
				close(midway)
				<-resume
			}
			if !yield(fmt.Sprintf("new%d", i), nil) {
				return
			}
		}
	}
	done := make(chan error, 1)
	go func() { _, err := a.Replace(ctx, "l", members); done <- err }()
	<-midway
	within(t, 5*time.Second, "import under way", func() bool {
		s := b.Summary()
		return len(s) == 1 && s[0].Importing >= 2000
	})
	if !contains(t, b, "l", "old1") || contains(t, b, "l", "new1") {
		t.Fatal("the rules see a half-done replace")
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "replace", func() bool { return contains(t, b, "l", "new2999") })
	if contains(t, b, "l", "old1") || !contains(t, b, "l", "new0") {
		t.Fatal("the replaced list is not the new one")
	}
	if n, _ := b.Members("l"); n != 3000 {
		t.Fatalf("members = %d, want 3000", n)
	}
	page, next, err := a.Page(ctx, "l", 0, 10)
	if err != nil || len(page) != 10 || next == 0 || !strings.HasPrefix(page[0], "new") {
		t.Fatalf("page = %v, %d, %v", page, next, err)
	}
}

// TestFailedReplaceKeepsTheList: a replace whose input fails half way
// leaves the list as it was.
func TestFailedReplaceKeepsTheList(t *testing.T) {
	a := replica(t, startServer(t))
	ctx := context.Background()
	defer func(n int) { maxBuffered = n }(maxBuffered)
	maxBuffered = 2 // the good lines are written before the bad one
	if _, err := a.Replace(ctx, "l", MembersOf([]string{"new5", "new6"})); err != nil {
		t.Fatal(err)
	}
	bad := LinesOf(io.MultiReader(strings.NewReader("x1\nx2\n"), strings.NewReader(strings.Repeat("y", 200)+"\n")))
	if _, err := a.Replace(ctx, "l", bad); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("replace with a bad line: %v", err)
	}
	if !contains(t, a, "l", "new5") || contains(t, a, "l", "x1") {
		t.Fatal("a failed replace changed the list")
	}
	if n, _ := a.Members("l"); n != 2 {
		t.Fatalf("members after a failed replace = %d", n)
	}
	within(t, 5*time.Second, "the failed replace's members dropped", func() bool { return a.Summary()[0].Importing == 0 })
}

func TestPageWalksTheWholeList(t *testing.T) {
	url := startServer(t)
	a := replica(t, url)
	ctx := context.Background()
	var want []string
	for i := range 2500 {
		want = append(want, fmt.Sprintf("u%d", i))
	}
	if _, err := a.Add(ctx, "big", MembersOf(want)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Remove(ctx, "big", MembersOf([]string{"u7"})); err != nil {
		t.Fatal(err)
	}
	var got []string
	var cursor uint64
	for {
		page, next, err := a.Page(ctx, "big", cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == 0 {
			break
		}
		cursor = next
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "u7" })
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("pages hold %d members, want %d", len(got), len(want))
	}
}

func TestNamesAndMembersAreChecked(t *testing.T) {
	for _, bad := range []string{"", "a.b", "a b", "a*", strings.Repeat("x", 65)} {
		if CheckName(bad) == nil {
			t.Errorf("CheckName(%q) = nil", bad)
		}
	}
	for _, bad := range []string{"", "a\nb", strings.Repeat("x", MaxMemberBytes+1)} {
		if CheckMember(bad) == nil {
			t.Errorf("CheckMember(%q) = nil", bad)
		}
	}
	if CheckMember("用户.a b*>") != nil {
		t.Error("a member with dots, spaces and wildcards must be fine: keys are encoded")
	}
}

// BenchmarkContains is the cost of one `in list(...)` check on a replica
// holding a million members.
func BenchmarkContains(b *testing.B) {
	url := startServer(b)
	l := replica(b, url)
	l.mu.Lock()
	m := &memList{gens: map[uint64]*genSets{}}
	g := m.generation(0)
	for i := range 1_000_000 {
		mb := "user_" + itoa(i)
		s := g.shards[shardOf(mb)]
		if s == nil {
			s = newHashSet()
			g.shards[shardOf(mb)] = s
		}
		s.add(hashOf(mb))
	}
	l.lists["spammers"] = m
	l.mu.Unlock()
	accounts := make([]string, 1024)
	for i := range accounts {
		accounts[i] = "user_" + itoa(i*1999)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = l.Contains("spammers", accounts[i&1023])
			i++
		}
	})
}

// TestConcurrentWritersLoseNothing: two replicas adding to the same
// shards at once (compare-and-set merges) end with every member.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	url := startServer(t)
	a, b := replica(t, url), replica(t, url)
	ctx := context.Background()
	defer func(n int) { maxBuffered = n }(maxBuffered)
	maxBuffered = 200 // many small merges, racing each other
	errs := make(chan error, 2)
	for i, r := range []*Lists{a, b} {
		go func() {
			ms := make([]string, 1000)
			for j := range ms {
				ms[j] = fmt.Sprintf("r%d_%d", i, j)
			}
			_, err := r.Add(ctx, "l", MembersOf(ms))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*Lists{a, b} {
		within(t, 5*time.Second, "every member on every replica", func() bool { n, _ := r.Members("l"); return n == 2000 })
	}
	for _, m := range []string{"r0_0", "r1_999", "r0_500"} {
		if ok, err := a.Has(ctx, "l", m); err != nil || !ok {
			t.Fatalf("Has(%s) = %t, %v", m, ok, err)
		}
	}
}
