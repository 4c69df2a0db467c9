package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/friendflow/friendflow/engine/admin"
)

// mountPprof serves the Go profiler on the admin listener; off by default
// because a profile shows what a process is doing to anyone who can reach it.
func mountPprof(a *admin.Server) {
	a.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
	a.Handle("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	a.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	a.Handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	a.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}
