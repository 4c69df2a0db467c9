// Package admin serves friendflow's operator HTTP API on its own listener
// (loopback by default): /healthz and /readyz, the rule endpoints (GET
// /rules, POST /reload, POST /explain), the dead-letter endpoints (GET
// /dlq, POST /dlq/replay, POST /dlq/drop), the recording (GET /events,
// GET /events/{id}, GET /events/export, POST /backtest), the operator
// console (/ and /ui/) and whatever else serve mounts (/metrics,
// /debug/pprof/). Every request but the probes (/healthz, /readyz,
// /metrics) passes a Guard first: Host check, bearer token (or the
// console's cookie), cross-origin writes refused.
package admin
