// Package engine decides what friendflow does with a callback. Engine is
// the imcallback.Handler the receiver hands every decoded callback to: it
// matches each event against the active rule set, decides the
// before-callbacks (allow, deny, or fail open/closed when a rule fails or
// the decision runs out of time), and stores the matched actions as jobs in
// the durable queue before the callback is answered. Explain runs the same
// matching without side effects; Metrics counts all of it for Prometheus.
//
// The Tencent wire protocol lives in engine/imcallback, the durable queue
// in engine/queue and the operator HTTP API in engine/admin.
package engine
