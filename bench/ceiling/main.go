// Command ceiling is the benchmark's upper bound: a bare net/http server
// that does the least a Tencent IM callback endpoint can do (read the whole
// body, answer OK) and nothing else. friendflow's throughput and latency
// are reported as ratios to it, so the figures say what the rules, the
// durable queue and the workers cost on this machine rather than how fast
// the machine is.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port, printed on stderr)")
	flag.Parse()

	okReply := []byte(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read everything, as friendflow must before it can answer.
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(okReply)
	})
	// The same timeouts friendflow sets, so neither side gets an edge from
	// connection handling.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	// load.sh passes port 0 and reads the port the kernel chose from here.
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	log.Fatal(srv.Serve(ln))
}
