package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/queue/queuetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openOn opens a queue on an external cluster with s registered.
func openOn(t *testing.T, urls string, s *script, edit func(*Config)) (*Queue, error) {
	t.Helper()
	reg := &actions.Registry{}
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: urls, Replicas: 3, Registry: reg, Workers: 4, Logger: testLogger(t)}
	edit(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := Open(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { _ = q.Stop(5 * time.Second) })
	}
	return q, err
}

// TestClusterNamespacesKeepAppsApart runs two apps (different SdkAppids
// and namespaces) on one three-node JetStream cluster with traffic to both:
// each app's workers run its own jobs only, their once keys are apart, and
// a third deployment claiming app A's namespace with another SdkAppid is
// refused, while another replica of app A is not.
func TestClusterNamespacesKeepAppsApart(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	type app struct {
		ns       string
		sdkappid int64
		s        *script
		q        *Queue
	}
	apps := []*app{{ns: "app-a", sdkappid: 1400000001}, {ns: "app-b", sdkappid: 1400000002}}
	for _, a := range apps {
		a.s = newScript()
		q, err := openOn(t, cluster.URLs, a.s, func(c *Config) { c.Namespace, c.SdkAppid = a.ns, a.sdkappid })
		if err != nil {
			t.Fatalf("Open %s: %v", a.ns, err)
		}
		a.q = q
		runTest(t, q)
	}
	// A second replica of app A shares its work.
	replica, err := openOn(t, cluster.URLs, apps[0].s, func(c *Config) { c.Namespace, c.SdkAppid = "app-a", 1400000001 })
	if err != nil {
		t.Fatalf("a second replica of app A: %v", err)
	}
	runTest(t, replica)

	const perApp = 40
	for i := range perApp {
		for _, a := range apps {
			enqueue(t, a.q, fmt.Sprintf("%s-cb%d", a.ns, i), mkJob(fmt.Sprintf("%s-job%d", a.ns, i), "ok"))
		}
	}
	for _, a := range apps {
		eventually(t, 30*time.Second, a.ns+"'s jobs done", func() bool {
			distinct, _ := a.s.doneTotals()
			return distinct == perApp
		})
	}
	for _, a := range apps {
		a.s.mu.Lock()
		for id := range a.s.calls {
			if !strings.HasPrefix(id, a.ns+"-") {
				t.Errorf("%s ran %s, a job of another app", a.ns, id)
			}
		}
		a.s.mu.Unlock()
	}
	for _, a := range apps {
		first, err := a.q.Once(context.Background(), "alice|bob", time.Hour)
		if err != nil || !first {
			t.Errorf("%s: Once = %v, %v; want first: once keys are per namespace", a.ns, first, err)
		}
	}

	// The names are the namespace's.
	nc, err := nats.Connect(cluster.URLs)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, name := range []string{"APP-A_JOBS", "APP-A_DEAD", "APP-B_JOBS", "APP-B_DEAD", "KV_app-a_once_3600s", "KV_app-b_once_3600s"} {
		if _, err := js.Stream(context.Background(), name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	if _, err := js.Stream(context.Background(), "FRIENDFLOW_JOBS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("default namespace's stream exists (%v): nothing should have used it", err)
	}

	// Same namespace, another SdkAppid: refused, naming both.
	_, err = openOn(t, cluster.URLs, newScript(), func(c *Config) { c.Namespace, c.SdkAppid = "app-a", 1400000009 })
	var owner *OwnerError
	if !errors.As(err, &owner) || owner.Owner != "1400000001" || owner.SdkAppid != 1400000009 || owner.Namespace != "app-a" {
		t.Fatalf("Open of app-a for another SdkAppid = %v; want an OwnerError naming 1400000001 and 1400000009", err)
	}
	if want := `queue: stream APP-A_JOBS of namespace "app-a" was created for SdkAppid 1400000001, not 1400000009`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestOwnerIsRecordedAndChecked: on the embedded server too, a data
// directory created for one SdkAppid is refused to another, a stream from
// before namespaces (no owner) is adopted, and SdkAppid 0 checks nothing.
func TestOwnerIsRecordedAndChecked(t *testing.T) {
	dir := t.TempDir()
	s := newScript()
	open := func(sdkappid int64) (*Queue, error) {
		reg := &actions.Registry{}
		if err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
		return Open(context.Background(), Config{DataDir: dir, SdkAppid: sdkappid, Registry: reg, Logger: testLogger(t)})
	}
	q, err := open(0) // as a release before namespaces: no owner recorded
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.jobs.CachedInfo().Config.Metadata[ownerKey]; ok {
		t.Error("owner recorded without an SdkAppid")
	}
	_ = q.Stop(time.Second)
	if q, err = open(1400000001); err != nil {
		t.Fatalf("adopting an unowned namespace: %v", err)
	}
	if got := q.dead.CachedInfo().Config.Metadata[ownerKey]; got != "1400000001" {
		t.Errorf("dead stream owner %q", got)
	}
	if _, err := q.Once(context.Background(), "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	b, _ := q.bucket(context.Background(), time.Minute)
	if got := b.stream.CachedInfo().Config.Metadata[ownerKey]; got != "1400000001" {
		t.Errorf("once bucket owner %q", got)
	}
	_ = q.Stop(time.Second)
	var owner *OwnerError
	if _, err := open(1400000002); !errors.As(err, &owner) {
		t.Fatalf("Open for another SdkAppid = %v", err)
	}
	if q, err = open(0); err != nil {
		t.Fatalf("SdkAppid 0 checks nothing: %v", err)
	}
	if got := q.jobs.CachedInfo().Config.Metadata[ownerKey]; got != "1400000001" {
		t.Errorf("an open without SdkAppid changed the owner to %q", got)
	}
	_ = q.Stop(time.Second)
}

// TestClusterOnceBucketWhileLeaderIsElected creates once buckets right
// after the cluster's meta leader (which creates streams) is killed: the
// creation is retried through the election within the caller's deadline,
// not refused after a fixed bound or at the first "stream not found".
func TestClusterOnceBucketWhileLeaderIsElected(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cluster := queuetest.StartCluster(t)
	q, err := openOn(t, cluster.URLs, newScript(), func(c *Config) { c.SdkAppid = 1400000001 })
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range cluster.Servers {
		if ns.JetStreamIsLeader() {
			ns.Shutdown()
			t.Logf("killed meta leader %s", ns.Name())
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, ttl := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour} {
		first, err := q.Once(ctx, fmt.Sprintf("key-%d", i), ttl)
		if err != nil || !first {
			t.Fatalf("Once with a %v bucket during the election = %v, %v", ttl, first, err)
		}
	}
	// Waiting is bounded by the caller's context.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := q.Once(done, "k", 4*time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Once with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestStreamCreationTransientsAreRetried(t *testing.T) {
	for _, err := range []error{jetstream.ErrStreamNotFound, jetstream.ErrStreamNameAlreadyInUse, nats.ErrNoResponders,
		nats.ErrTimeout, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}} {
		if !retryable(fmt.Errorf("queue: stream X: %w", err)) {
			t.Errorf("%v not retried", err)
		}
	}
	for _, err := range []error{&OwnerError{}, context.Canceled, nats.ErrConnectionClosed,
		&jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "invalid stream config"}} {
		if retryable(fmt.Errorf("queue: %w", err)) {
			t.Errorf("%v retried", err)
		}
	}
}

// TestOnceSettlesAnUnknownOutcome: after a create whose answer was lost,
// Once reads whose token the key holds: its own means the create stored
// it (first), another's means someone else was first, none means it was
// not stored (created now).
func TestOnceSettlesAnUnknownOutcome(t *testing.T) {
	q := openTest(t, t.TempDir(), newScript(), nil)
	ctx := context.Background()
	b, err := q.bucket(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Create(ctx, onceKey("mine"), []byte("tok-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.Create(ctx, onceKey("theirs"), []byte("tok-2")); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"mine": true, "theirs": false, "never-stored": true} {
		first, _, err := q.settleOnce(ctx, b, onceKey(key), []byte("tok-1"))
		if err != nil || first != want {
			t.Errorf("%s: settleOnce = %v, %v; want %v", key, first, err, want)
		}
	}
	if first, err := q.Once(ctx, "never-stored", time.Hour); err != nil || first {
		t.Errorf("Once after settleOnce stored the key = %v, %v; want not first", first, err)
	}
}
