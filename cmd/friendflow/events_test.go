package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/record"
)

// waitRecorded polls GET /events until the deployment holds n events:
// the recording is written off the reply path.
func waitRecorded(t *testing.T, adminAddr string, n int) *admin.EventList {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l admin.EventList
		resp, err := http.Get("http://" + adminAddr + "/events?limit=1000")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
		}
		if err == nil && l.Recorded == n && len(l.Events) == n {
			return &l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d events recorded (%v), want %d", adminAddr, l.Recorded, err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *served) waitRecorded(t *testing.T, n int) *admin.EventList {
	t.Helper()
	return waitRecorded(t, s.admin, n)
}

func TestEventsCommands(t *testing.T) {
	s := serveForConsole(t)
	s.sendTraffic(t)
	all := s.waitRecorded(t, 4)
	adminURL := "http://" + s.admin

	out, code := cli(t, "events", "list", "--admin-url", adminURL)
	if code != 0 || !strings.Contains(out, "mallory → dave") || !strings.Contains(out, "denied 38001") || !strings.Contains(out, "4 shown of 4 recorded events") {
		t.Fatalf("events list: exit %d\n%s", code, out)
	}
	out, code = cli(t, "events", "list", "--admin-url", adminURL, "--outcome", "denied", "-o", "json")
	var l admin.EventList
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Events) != 1 || l.Events[0].To != "carol" {
		t.Fatalf("events list --outcome denied -o json: exit %d %v\n%s", code, err, out)
	}
	out, code = cli(t, "events", "list", "--admin-url", adminURL, "--account", "alice", "--limit", "1")
	if code != 0 || !strings.Contains(out, "1 shown of 4 recorded events; more with --cursor") {
		t.Fatalf("events list --limit 1: exit %d\n%s", code, out)
	}
	id := strconv.FormatUint(all.Events[0].ID, 10) // mallory → dave
	out, code = cli(t, "events", "show", id, "--admin-url", adminURL)
	if code != 0 || !strings.Contains(out, "event "+id+" of callback") || !strings.Contains(out, "deny-loans: not_matched") {
		t.Fatalf("events show: exit %d\n%s", code, out)
	}
	out, code = cli(t, "events", "export", "--admin-url", adminURL, "--command", "Sns.CallbackFriendAdd")
	events, err := record.ReadJSONL([]byte(out))
	if code != 0 || err != nil || len(events) != 2 || events[0].From != "alice" {
		t.Fatalf("events export --command: exit %d %v\n%s", code, err, out)
	}
	for _, bad := range [][]string{{"events", "show"}, {"events", "show", "x"}, {"events", "list", "--outcome", "dead"}, {"events", "list", "extra"}} {
		if out, code := cli(t, append(bad, "--admin-url", adminURL)...); code == 0 {
			t.Errorf("%q: exit 0\n%s", bad, out)
		}
	}

	// tail follows until interrupted.
	tail := exec.Command(binary, "events", "tail", "--admin-url", adminURL, "--account", "zed")
	stdout, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for got := false; !got; {
		s.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add",
		  "PairList":[{"From_Account":"zed","To_Account":"<yan>","Initiator_Account":"zed"}]}`)
		select {
		case line := <-lines:
			if !strings.Contains(line, "zed → <yan>") {
				t.Fatalf("tail: %q", line)
			}
			got = true
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("tail printed nothing within 30 s")
		}
	}
	if err := tail.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := tail.Wait(); err != nil {
		t.Fatalf("tail interrupted: %v", err)
	}
}

// TestEventsSurviveARestart: events recorded before a SIGTERM are listed
// after the restart on the same --data, with the same ids.
func TestEventsSurviveARestart(t *testing.T) {
	data := t.TempDir()
	s := serveForConsole(t, "--data", data)
	s.sendTraffic(t)
	before := s.waitRecorded(t, 4)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("friendflow did not stop")
	}
	_ = s.cmd.Wait()
	again := serveForConsole(t, "--data", data)
	after := again.waitRecorded(t, 4)
	for i := range before.Events {
		if b, a := before.Events[i], after.Events[i]; a.ID != b.ID || a.CallbackID != b.CallbackID || a.To != b.To {
			t.Errorf("event %d: before %+v, after %+v", i, b, a)
		}
	}
}

// TestReplicasListEachOthersEvents: two replicas on one JetStream list
// the events both received.
func TestReplicasListEachOthersEvents(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	a := serveForConsole(t, "--nats-url", ns.ClientURL())
	b := serveForConsole(t, "--nats-url", ns.ClientURL())
	a.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add",
	  "PairList":[{"From_Account":"from-a","To_Account":"x","Initiator_Account":"from-a"}]}`)
	b.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add",
	  "PairList":[{"From_Account":"from-b","To_Account":"x","Initiator_Account":"from-b"}]}`)
	for _, s := range []*served{a, b} {
		l := s.waitRecorded(t, 2)
		got := map[string]bool{l.Events[0].From: true, l.Events[1].From: true}
		if !got["from-a"] || !got["from-b"] {
			t.Errorf("%s lists %+v", s.admin, l.Events)
		}
	}
	out, code := cli(t, "events", "list", "--admin-url", "http://"+b.admin, "--account", "from-a", "-o", "json")
	var l admin.EventList
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Events) != 1 {
		t.Fatalf("replica b's list of replica a's event: exit %d %v\n%s", code, err, out)
	}
}
