// Command hostile tries a running `friendflow serve` as issue 22's attacker
// did, and measures what a genuine caller sees meanwhile: it holds many
// keep-alive sockets that each send one request without credentials (and
// reconnect whenever the server closes them), then times one signed
// callback, and reports the server's peak memory (VmHWM from
// /proc/PID/status). With -tar it POSTs a 10 KB PAX sparse tar whose file
// claims 1 GiB to /backtest instead and times the refusal.
//
//	hostile -pid $(pidof friendflow) -target 127.0.0.1:8080 -path /nope -sockets 1100 \
//	        -listen 127.0.0.1:8080 -token TOKEN -sdkappid 1400000000
//	hostile -pid … -target 127.0.0.1:9090 -path /healthz -sockets 20000 -listen … -token …
//	hostile -pid … -tar 127.0.0.1:9090
//
// It raises its own descriptor limit to what the sockets need (root may
// raise the hard limit too).
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/friendflow/friendflow/internal/hostile"
)

func main() {
	pid := flag.Int("pid", 0, "the friendflow process, whose VmHWM is reported")
	target := flag.String("target", "", "host:port the sockets connect to")
	path := flag.String("path", "/nope", "path each socket GETs")
	sockets := flag.Int("sockets", 1100, "keep-alive sockets held; 0: none, only the measurements (run them apart from the processes holding the sockets, whose busy goroutines would delay them)")
	hold := flag.Duration("hold", 5*time.Second, "how long the sockets are held before the signed callback")
	listen := flag.String("listen", "", "friendflow's callback listener")
	token := flag.String("token", "", "the callback token")
	sdkappid := flag.Int("sdkappid", 1400000000, "SdkAppid")
	tarTo := flag.String("tar", "", "admin host:port: POST the sparse tar bomb to /backtest instead")
	reconnect := flag.Bool("reconnect", true, "open a new socket whenever the server closes one")
	floodOnly := flag.Bool("flood-only", false, "only hold the sockets for -hold (a second process adds sockets past one process's descriptor limit)")
	flag.Parse()

	if *tarTo != "" {
		start := time.Now()
		resp, err := http.Post("http://"+*tarTo+"/backtest", "application/x-tar", bytes.NewReader(hostile.SparseTar(1<<30)))
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("tar bomb (10 KiB claiming 1 GiB): %d in %s: %s\n", resp.StatusCode, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(body)))
		fmt.Printf("server VmHWM %s\n", vmHWM(*pid))
		return
	}

	raiseNoFile(uint64(*sockets) + 1000)
	var open, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *target + "\r\nUser-Agent: hostile\r\n\r\n")
	for range *sockets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hammer(*target, req, *reconnect, stop, &open, &served)
		}()
	}
	time.Sleep(*hold)
	if *sockets > 0 {
		fmt.Printf("%d sockets to %s%s: %d open now, %d replies so far\n", *sockets, *target, *path, open.Load(), served.Load())
	}
	if *floodOnly {
		close(stop)
		wg.Wait()
		return
	}

	status, took, err := signedCallback(*listen, *token, *sdkappid)
	fmt.Printf("signed callback during the flood: %d in %s (err %v)\n", status, took.Round(time.Millisecond), err)
	if strings.HasSuffix(*path, "healthz") || strings.HasSuffix(*path, "readyz") {
		start := time.Now()
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + *target + "/readyz")
		if err == nil {
			resp.Body.Close()
			fmt.Printf("/readyz probe during the flood: %d in %s\n", resp.StatusCode, time.Since(start).Round(time.Millisecond))
		} else {
			fmt.Printf("/readyz probe during the flood: %v after %s\n", err, time.Since(start).Round(time.Millisecond))
		}
	}
	fmt.Printf("server VmHWM %s\n", vmHWM(*pid))
	close(stop)
	wg.Wait()
}

// hammer holds one keep-alive socket that has sent req, opening a new one
// whenever the server closes it, until stop.
func hammer(target string, req []byte, reconnect bool, stop chan struct{}, open, served *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp", target, 3*time.Second)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		open.Add(1)
		done := make(chan struct{})
		go func() {
			select {
			case <-stop:
				c.Close()
			case <-done:
			}
		}()
		if _, err := c.Write(req); err == nil {
			br := bufio.NewReader(c)
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				served.Add(1)
				// Keep-alive: send nothing more, hold the socket.
			}
		}
		close(done)
		c.Close()
		open.Add(-1)
		if !reconnect {
			<-stop
			return
		}
	}
}

func signedCallback(listen, token string, sdkappid int) (int, time.Duration, error) {
	rt := strconv.FormatInt(time.Now().Unix(), 10)
	q := url.Values{"SdkAppid": {strconv.Itoa(sdkappid)}, "CallbackCommand": {"Sns.CallbackFriendAdd"}, "contenttype": {"json"},
		"ClientIP": {"127.0.0.1"}, "OptPlatform": {"RESTAPI"}, "RequestTime": {rt}, "Sign": {sign(token, rt)}}
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Post("http://"+listen+"/callback?"+q.Encode(), "application/json", strings.NewReader(friendAdd))
	if err != nil {
		return 0, time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// friendAdd is a one-pair Sns.CallbackFriendAdd body, as
// examples/callbacks/friend_add.json has them.
const friendAdd = `{"CallbackCommand":"Sns.CallbackFriendAdd","PairList":[{"From_Account":"id","To_Account":"id1","Initiator_Account":"id"}],"ClientCmd":"friend_add","Admin_Account":"","ForceFlag":1}`

// sign is Tencent's Sign: hex(sha256(token + RequestTime)).
func sign(token, requestTime string) string {
	sum := sha256.Sum256([]byte(token + requestTime))
	return hex.EncodeToString(sum[:])
}

func vmHWM(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func raiseNoFile(n uint64) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return
	}
	if r.Cur >= n {
		return
	}
	r.Cur = n
	if r.Max < n {
		r.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		log.Printf("descriptor limit stays %d: %v", r.Cur, err)
	}
}
