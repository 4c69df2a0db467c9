package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions/webhooktest"
	"github.com/friendflow/friendflow/examples/callbacks"
)

// deliveries is a webhook target that records X-Friendflow-Delivery ids.
type deliveries struct {
	mu    sync.Mutex
	seen  map[string]int
	total int
	// verify, when set, checks every request's Standard Webhooks signature
	// with the specification's independent implementation; failed says
	// why requests did not pass, last is the last request that did.
	verify *webhooktest.Verifier
	failed []string
	last   *http.Request
	body   []byte
}

func (d *deliveries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("X-Friendflow-Delivery")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen[id]++
	d.total++
	if d.verify != nil {
		switch err := d.verify.Verify(r.Header, body, time.Now()); {
		case err != nil:
			d.failed = append(d.failed, err.Error())
		case r.Header.Get("webhook-id") != id:
			d.failed = append(d.failed, "webhook-id "+r.Header.Get("webhook-id")+" is not the delivery id "+id)
		default:
			d.last, d.body = r, body
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *deliveries) counts() (unique, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen), d.total
}

// TestKill9LosesNoAcceptedJob is the product promise: a callback answered OK
// has its work on disk. Callbacks are accepted while the webhook target is
// down, the process is killed with SIGKILL, restarted on the same --data,
// and the target comes up: every accepted job must be delivered.
func TestKill9LosesNoAcceptedJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary twice")
	}
	target := freePort(t)
	rulesDir, data := t.TempDir(), t.TempDir()
	rule := fmt.Sprintf(`rules:
  - name: notify-crm
    actions:
      - webhook:
          url: http://%s/hook
          timeout: 2s
        retry: { attempts: 1000, backoff: 50ms, max_backoff: 300ms }
`, target)
	if err := os.WriteFile(filepath.Join(rulesDir, "crm.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := freePort(t), freePort(t)
	args := []string{"serve", "--sdkappid", "1400000000", "--listen", listen, "--admin-listen", admin,
		"--rules", rulesDir, "--data", data, "--log-level", "warn"}
	p := start(t, nil, args...)
	waitReady(t, admin)

	body := callbacks.Must("friend_add.json") // three pairs
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}}
	const sent = 150
	accepted := 0
	for i := range sent {
		// Distinct events: the same body twice would be one event sent
		// twice, whose jobs share their delivery ids.
		body := bytes.ReplaceAll(body, []byte(`"From_Account":"id"`), fmt.Appendf(nil, `"From_Account":"id-%d"`, i))
		resp, err := http.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(raw), `"ActionStatus":"OK"`) {
			accepted++
		}
	}
	if accepted != sent {
		t.Fatalf("only %d of %d callbacks accepted", accepted, sent)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()

	p2 := start(t, nil, args...)
	waitReady(t, admin)
	_ = p2

	d := &deliveries{seen: map[string]int{}}
	ln, err := net.Listen("tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	want := accepted * 3
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if u, _ := d.counts(); u >= want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	unique, total := d.counts()
	t.Logf("accepted %d callbacks (%d jobs) before kill -9; after restart delivered %d unique jobs in %d requests (%d duplicates)",
		accepted, want, unique, total, total-unique)
	if unique != want {
		t.Fatalf("lost %d accepted jobs", want-unique)
	}
}
