// Package queuetest starts real NATS JetStream clusters on loopback for
// tests of code that runs on several replicas.
package queuetest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is three clustered JetStream servers on loopback.
type Cluster struct {
	Servers []*server.Server
	URLs    string // client URLs, comma-separated, for queue.Config.URL
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartCluster runs three clustered JetStream servers on loopback, each
// with its own store, shut down when the test ends.
//
// Their ports are picked free and then bound by the servers, so another
// process can take one in between (several test binaries run at once on
// a CI machine): a server that cannot listen never becomes ready, and the
// cluster is started again on other ports.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	const attempts = 3
	for i := 1; ; i++ {
		c, err := startCluster(t)
		if err == nil {
			return c
		}
		if i == attempts {
			t.Fatalf("cluster: %v (%d attempts)", err, attempts)
		}
		t.Logf("cluster: %v; starting again on other ports", err)
	}
}

func startCluster(t testing.TB) (*Cluster, error) {
	const n = 3
	var clientPorts, routePorts [n]int
	var routes, urls []string
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c := &Cluster{Servers: make([]*server.Server, 0, n), URLs: strings.Join(urls, ",")}
	stop := func() {
		for _, ns := range c.Servers {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	for i := range n {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "friendflow-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:      true,
			NoSigs:     true,
		})
		if err != nil {
			stop()
			return nil, err
		}
		ns.Start()
		c.Servers = append(c.Servers, ns)
	}
	// A bound, not a wait: it returns as soon as the listeners are up
	// (starting JetStream on a loaded 2-core machine under -race can take
	// seconds).
	for _, ns := range c.Servers {
		if !ns.ReadyForConnections(30 * time.Second) {
			stop()
			return nil, fmt.Errorf("%s not ready (a port taken meanwhile?)", ns.Name())
		}
	}
	t.Cleanup(stop)
	return c, nil
}

// KillStreamLeader shuts down the server leading stream and returns its
// name.
func (c *Cluster) KillStreamLeader(t testing.TB, stream string) string {
	t.Helper()
	nc, err := nats.Connect(c.URLs)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	for _, ns := range c.Servers {
		if ns.Name() == info.Cluster.Leader {
			ns.Shutdown()
			return ns.Name()
		}
	}
	t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
	return ""
}
