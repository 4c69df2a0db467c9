// Package admin serves friendflow's operator HTTP API on its own listener
// (loopback by default): /healthz and /readyz, the rule endpoints (GET
// /rules, POST /reload, POST /explain), the dead-letter endpoints (GET
// /dlq, POST /dlq/replay, POST /dlq/drop), the recording (GET /events,
// GET /events/{id}, GET /events/export, POST /backtest) and whatever else
// serve mounts
// (/metrics, /debug/pprof/).
package admin
