package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/internal/hostile"
)

// holdSockets opens n connections to addr that each send req once and
// then stay open, as keep-alive clients would, without reading. They are
// closed at the end of the test.
func holdSockets(t *testing.T, addr, req string, n int) {
	t.Helper()
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 64)
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return // turned away by the kernel's accept queue
			}
			if req != "" {
				_, _ = c.Write([]byte(req))
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
}

// signedPost posts a signed one-pair callback; the client's timeout stands
// for Tencent's 2 s (doubled: the race detector slows the server down).
func signedPost(t *testing.T, listen, token string) (int, error) {
	t.Helper()
	rt := fmt.Sprint(time.Now().Unix())
	q := url.Values{"SdkAppid": {"1400000000"}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "RequestTime": {rt}, "Sign": {imcallback.Sign([]byte(token), rt)}}
	resp, err := (&http.Client{Timeout: 4 * time.Second}).Post("http://"+listen+"/callback?"+q.Encode(), "application/json",
		strings.NewReader(`{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"a","To_Account":"b"}]}`))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Sockets that sent one request that is not a callback (a 404) and stay
// open, and sockets that sent nothing, outnumber the callback listener's
// slots: a signed callback is still answered at once, not after the idle
// timeout (120 s) they used to hold their slots for.
func TestIdleSocketsDoNotHoldCallbackSlots(t *testing.T) {
	const maxConns = 16
	listen, admin := freePort(t), freePort(t)
	const token = "idle-token-1"
	p := start(t, []string{"FRIENDFLOW_CALLBACK_TOKEN=" + token}, "serve", "--sdkappid", "1400000000",
		"--listen", listen, "--admin-listen", admin, "--max-connections", fmt.Sprint(maxConns),
		"--rules", "../../examples/rules", "--data", t.TempDir())
	waitReady(t, admin)

	// A 404 asks the client to close: it holds no slot after its reply.
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("GET /nope: %d, close %v; want 404 with Connection: close", resp.StatusCode, resp.Close)
	}

	holdSockets(t, listen, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 3*maxConns)
	holdSockets(t, listen, "", 2*maxConns)
	status, err := signedPost(t, listen, token)
	if err != nil || status != 200 {
		t.Fatalf("signed callback during %d idle sockets: %d %v\n%s", 5*maxConns, status, err, p.logs())
	}
}

// Keep-alive probes by the hundred hold at most the admin listener's own
// limit of descriptors, and /readyz is still answered among them.
func TestAdminListenerHasItsOwnConnectionLimit(t *testing.T) {
	const hostile = 400
	listen, admin := freePort(t), freePort(t)
	const token = "admin-limit-token"
	p := start(t, []string{"FRIENDFLOW_CALLBACK_TOKEN=" + token}, "serve", "--sdkappid", "1400000000",
		"--listen", listen, "--admin-listen", admin, "--rules", "../../examples/rules", "--data", t.TempDir())
	waitReady(t, admin)
	base := openFDs(t, p.cmd.Process.Pid)

	holdSockets(t, admin, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", hostile)
	fds := openFDs(t, p.cmd.Process.Pid)
	t.Logf("descriptors: %d before %d keep-alive probes, %d during", base, hostile, fds)
	if fds > base+adminMaxConnections+16 {
		t.Errorf("%d descriptors during the flood (%d before): the admin limit of %d did not hold", fds, base, adminMaxConnections)
	}
	resp, err := (&http.Client{Timeout: 4 * time.Second}).Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatalf("/readyz among %d keep-alive probes: %v", hostile, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	if status, err := signedPost(t, listen, token); err != nil || status != 200 {
		t.Fatalf("signed callback: %d %v", status, err)
	}
}

// The 10 KB sparse tar whose file claims 1 GiB is refused on its header,
// in little memory, with nothing written to the temp directory.
func TestServeRefusesSparseTarBomb(t *testing.T) {
	listen, admin := freePort(t), freePort(t)
	tmp := t.TempDir()
	p := start(t, []string{"FRIENDFLOW_SDKAPPID=1400000000", "TMPDIR=" + tmp}, "serve", "--listen", listen, "--admin-listen", admin,
		"--rules", "../../examples/rules", "--data", t.TempDir(), "--log-level", "warn")
	waitReady(t, admin)
	resp, err := http.Post("http://"+admin+"/backtest", "application/x-tar", bytes.NewReader(hostile.SparseTar(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "claims 1073741824 bytes") {
		t.Fatalf("POST /backtest with the bomb: %d %s", resp.StatusCode, body)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the temp directory holds %v", left)
	}
	// With the race detector's overhead, as TestServeAliasBomb.
	if rss := peakRSS(t, p.cmd.Process.Pid); rss > 100 {
		t.Errorf("serve peaked at %d MiB; want < 100 MiB", rss)
	}
}
