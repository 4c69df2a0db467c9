package queue

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultNamespace is the namespace of a Config without one. Its names are
// the ones every release before namespaces used, so an existing deployment
// upgrades in place.
const DefaultNamespace = "friendflow"

// namespaceRE is what a namespace may be. NATS allows more in a name
// (https://docs.nats.io/running-a-nats-service/nats_admin/jetstream_admin/naming),
// but a namespace becomes a subject token, part of stream names (upper
// case) and part of key-value bucket names ([a-zA-Z0-9_-] only): lower case
// keeps two namespaces from sharing a stream name that differs only in case.
var namespaceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckNamespace returns an error saying what is wrong with ns, or nil.
func CheckNamespace(ns string) error {
	if !namespaceRE.MatchString(ns) {
		return fmt.Errorf("namespace %q: want 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter", ns)
	}
	return nil
}

// names are the JetStream names of one namespace: every stream, consumer,
// subject and bucket the queue uses is derived here and nowhere else.
type names struct {
	ns           string
	jobsStream   string // work-queue stream of job messages
	deadStream   string // limits stream of dead letters
	consumer     string // the durable consumer every replica shares
	jobsSubjects string // wildcard of every job message
	batchPrefix  string // + number of jobs in the message
	one          string // a job in a message of its own
	deadSubjects string // wildcard of every dead letter
	deadPrefix   string // + base64url(job id)
	cancelBucket string // key-value bucket of cancel_on's markers
	heldStream   string // limits stream of the jobs replicas run from memory (held.go)
	heldSubjects string // wildcard of every held message
	heldPrefix   string // + replica id + "." + number of jobs in the message
	// recorded events (events.go)
	eventsStream string
	eventsPrefix string // + number of events in the message
	traceStream  string
	tracePrefix  string // + a bucket of callbacks (engine/record)
}

func newNames(ns string) names {
	up := strings.ToUpper(ns)
	return names{
		ns:           ns,
		jobsStream:   up + "_JOBS",
		deadStream:   up + "_DEAD",
		consumer:     ns + "-workers",
		jobsSubjects: ns + ".jobs.>",
		batchPrefix:  ns + ".jobs.cb.",
		one:          ns + ".jobs.one",
		deadSubjects: ns + ".dead.>",
		deadPrefix:   ns + ".dead.",
		cancelBucket: ns + "_cancel",
		heldStream:   up + "_HELD",
		heldSubjects: ns + ".held.>",
		heldPrefix:   ns + ".held.",

		eventsStream: up + "_EVENTS",
		eventsPrefix: ns + ".events.",
		traceStream:  up + "_TRACE",
		tracePrefix:  ns + ".trace.",
	}
}

// deadSubject is the dead-letter subject of a job id. Base64url keeps any
// id a single valid subject token, and is reversible for debugging.
func (n names) deadSubject(id string) string {
	return n.deadPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// onceBucket names the once bucket for ttl: one bucket per distinct ttl.
func (n names) onceBucket(ttl time.Duration) string {
	switch {
	case ttl == 0:
		return n.ns + "_once_forever"
	case ttl%time.Second == 0:
		return n.ns + "_once_" + strconv.FormatInt(int64(ttl/time.Second), 10) + "s"
	default:
		return n.ns + "_once_" + strconv.FormatInt(int64(ttl/time.Millisecond), 10) + "ms"
	}
}
