// Command rawhttp is the peer comparison's ceiling (bench/peers/anchors.sh,
// target raw-nethttp): net/http, read the whole body, write the fixed OK
// JSON, nothing else. It takes the -addr and -path flags anchors.sh passes;
// bench/ceiling is the same server for bench/load.sh, which passes -listen.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// ok is the answer Tencent IM expects from a callback receiver.
var ok = []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20))
	bufPool.Put(buf)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ok)
}

// listen listens on addr only if its host is a loopback literal, so that a
// typo can never bind a public interface.
func listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing non-loopback listen address %q", addr)
	}
	return net.Listen("tcp", addr)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "loopback listen address")
	path := flag.String("path", "/callback", "callback path")
	flag.Parse()
	ln, err := listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(*path, handle)
	log.Printf("rawhttp listening on http://%s%s", ln.Addr(), *path)
	log.Fatal(http.Serve(ln, mux))
}
