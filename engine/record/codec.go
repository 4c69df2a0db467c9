package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/imevent"
	"github.com/klauspost/compress/s2"
)

// Stored layout. The writer packs what it takes from the buffer into few
// messages (a group commit, as the queue does with jobs): JetStream's
// per-message work, not the bytes, is what a message costs, and one
// message per event cost some 15 µs of CPU per event.
//
//   - An events message is JSONL, one Event per line without its id:
//     the id is the message's sequence times idsPerMsg plus the line's
//     index, so ids grow as events are stored and cursors are sequences.
//   - A trace message is JSONL of the updates of one flush whose
//     callbacks hash to one of traceBuckets subjects: a trace is read
//     from one subject, from the event's time on.
//   - Either is stored packed (pack): readers unpack it first.
const (
	idBits    = 8
	idsPerMsg = 1 << idBits
	// maxMsgBytes bounds one message (JetStream's default limit is 1 MiB).
	maxMsgBytes = 256 << 10
	// typicalEventBytes is about a stored event's size (bench events).
	typicalEventBytes = 800
	traceBuckets      = 64
)

// packedMark starts a message packed with S2 (block format) after it:
// JSONL never starts with it. The writer packs what it writes, as it
// is repetitive (keys, the rules hash, callback ids in job ids) and
// the store's costs grow with the bytes: the socket, its checksums and
// file writes, and evicting the oldest blocks once the stream is full.
// S2 is what the embedded server itself uses to compress streams.
// https://pkg.go.dev/github.com/klauspost/compress/s2
const packedMark = 0xff

// maxUnpacked bounds what one message unpacks to: the writer packs at
// most maxMsgBytes of lines or a flush's updates of one trace bucket.
const maxUnpacked = 16 << 20

// pack appends src to dst packed (packedMark, then S2), or as it is when
// packing does not make it shorter. It returns dst and where src's form
// starts in it. dst may move: what an earlier call returned stays valid.
func pack(dst, src []byte) ([]byte, int) {
	start := len(dst)
	need := 1 + s2.MaxEncodedLen(len(src))
	if need <= 0 { // too large to pack: cannot happen below maxMsgBytes
		return append(dst, src...), start
	}
	if cap(dst)-start < need {
		dst = append(make([]byte, 0, max(2*cap(dst), start+need)), dst...)
	}
	dst = append(dst, packedMark)
	enc := s2.Encode(dst[start+1:start+need], src)
	if len(enc)+1 >= len(src) {
		return append(dst[:start], src...), start
	}
	return dst[:start+1+len(enc)], start
}

// unpack returns a stored message's data as JSONL: data itself, or
// unpacked.
func unpack(data []byte) ([]byte, error) {
	if len(data) == 0 || data[0] != packedMark {
		return data, nil
	}
	n, err := s2.DecodedLen(data[1:])
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	if n > maxUnpacked {
		return nil, fmt.Errorf("unpack: %d bytes, more than %d", n, maxUnpacked)
	}
	out, err := s2.Decode(make([]byte, n), data[1:])
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return out, nil
}

// eventID is the id of line i of the message at seq.
func eventID(seq uint64, i int) uint64 { return seq<<idBits | uint64(i) }

// seqOf is the sequence of the message holding event id.
func seqOf(id uint64) uint64 { return id >> idBits }

// bucketOf is the trace subject token of a callback.
func bucketOf(callbackID string) string {
	return strconv.Itoa(int(fnv32a(callbackID) % traceBuckets))
}

// fnv32a is hash/fnv's New32a of s, without its allocations: a job's
// every update is bucketed.
func fnv32a(s string) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime32
	}
	return h
}

// line is what Record encodes of one event. What a callback's events
// share is quoted once: qcb and qhash are callbackID and hash as JSON
// strings.
type line struct {
	qcb, qhash                    []byte
	callbackID, command, storeErr string
	received                      time.Time
	ev                            *imevent.Event
	receivedText                  []byte // received formatted, when Record did once
	matches                       []rules.Match
	errs                          []rules.RuleError
	decision                      *imcallback.ResultItem
	jobs                          []queue.Job
	skips                         []queue.OnceSkip
}

// appendLine appends the stored form of one event (an Event as
// encoding/json writes it, without its id: TestStoredEventIsEvent),
// straight from what the engine hands Record: no Event is built on the
// reply path, and encoding/json's reflection, and its re-validation of
// the event's own JSON, cost more than all the rest of recording.
func appendLine(b []byte, x *line) []byte {
	from, to := clip(x.ev.From_Account, clipBytes[0]), clip(x.ev.To_Account, clipBytes[0])
	b = append(b, `{"callback_id":`...)
	b = append(b, x.qcb...)
	b = append(b, `,"received":"`...)
	if x.receivedText != nil {
		b = append(b, x.receivedText...)
	} else {
		b = x.received.AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, `","command":`...)
	b = imevent.AppendJSONString(b, x.command)
	b = append(b, `,"from":`...)
	b = imevent.AppendJSONString(b, from)
	b = append(b, `,"to":`...)
	b = imevent.AppendJSONString(b, to)
	b = append(b, `,"event":`...)
	at := len(b)
	b = appendEventCompact(b, x.ev)
	if len(b)-at > maxEventJSON { // rare: clipped the slow way
		clipped, _ := eventJSON(imevent.AppendEventJSON(nil, x.ev))
		b = append(b[:at], clipped...)
		b = append(b, `,"truncated":true`...)
	}
	b = append(b, `,"rules_hash":`...)
	b = append(b, x.qhash...)
	b = appendMatches(b, x.matches)
	if len(x.errs) > 0 {
		b = append(b, `,"errors":[`...)
		for i, e := range x.errs {
			if i > 0 {
				b = append(b, ',')
			}
			b = imevent.AppendJSONString(b, e.Rule)
		}
		b = append(b, ']')
	}
	if d := x.decision; d != nil {
		b = append(b, `,"decision":{"To_Account":`...)
		b = imevent.AppendJSONString(b, to)
		b = append(b, `,"ResultCode":`...)
		b = strconv.AppendInt(b, int64(d.ResultCode), 10)
		b = append(b, `,"ResultInfo":`...)
		b = imevent.AppendJSONString(b, d.ResultInfo)
		b = append(b, '}')
	}
	if x.storeErr != "" {
		b = append(b, `,"store_error":`...)
		b = imevent.AppendJSONString(b, x.storeErr)
	}
	if len(x.skips) > 0 { // rare: encoding/json is fine
		skips := make([]OnceSkip, len(x.skips))
		for k, s := range x.skips {
			skips[k] = OnceSkip{Rule: s.Rule, Key: clip(s.Key, clipBytes[0]), FirstSeen: s.Seen.At, FirstCallback: s.Seen.CallbackID}
		}
		if raw, err := json.Marshal(skips); err == nil {
			b = append(b, `,"once_skipped":`...)
			b = append(b, raw...)
		}
	}
	return append(appendJobs(b, x.jobs, x.callbackID, x.qcb), '}')
}

// appendMatches appends "matched" and, when any is a shadow rule,
// "shadow".
func appendMatches(b []byte, ms []rules.Match) []byte {
	b = append(b, `,"matched":`...)
	if len(ms) == 0 {
		return append(b, "null"...)
	}
	shadows := 0
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = imevent.AppendJSONString(b, m.Rule)
		if m.Shadow {
			shadows++
		}
	}
	b = append(b, ']')
	if shadows == 0 {
		return b
	}
	b = append(b, `,"shadow":[`...)
	for _, m := range ms {
		if m.Shadow {
			b = imevent.AppendJSONString(b, m.Rule)
			if shadows--; shadows > 0 {
				b = append(b, ',')
			}
		}
	}
	return append(b, ']')
}

// appendJobs appends "jobs". Their ids start with the callback id cb,
// already quoted as qcb: only the rest of each is quoted.
func appendJobs(b []byte, jobs []queue.Job, cb string, qcb []byte) []byte {
	b = append(b, `,"jobs":`...)
	if len(jobs) == 0 {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range jobs {
		j := &jobs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJobID(b, j.ID, cb, qcb)
		b = append(b, `,"rule":`...)
		b = imevent.AppendJSONString(b, j.Rule)
		b = append(b, `,"action":`...)
		b = imevent.AppendJSONString(b, j.Action)
		b = append(b, `,"outcome":"`+JobQueued+`"}`...)
	}
	return append(b, ']')
}

// appendJobID appends id quoted, reusing qcb, cb quoted, when cb is a
// prefix of id that needed no escapes: JSON escapes character by
// character, so the rest is quoted on its own after it.
func appendJobID(b []byte, id, cb string, qcb []byte) []byte {
	rest, ok := strings.CutPrefix(id, cb)
	if !ok || len(qcb) != len(cb)+2 {
		return imevent.AppendJSONString(b, id)
	}
	b = append(b, qcb[:len(qcb)-1]...) // "cb
	at := len(b)
	b = imevent.AppendJSONString(b, rest) // "rest"
	copy(b[at:], b[at+1:])                // without its opening quote
	return b[:len(b)-1]
}

// splitJobs returns the jobs of event i, which start jobs, and the jobs
// after them: the engine makes a callback's jobs in event order and names
// each callbackID-event-match-action. One pass over a callback's jobs,
// not one per event: a 1000-pair callback can have thousands.
func splitJobs(jobs []queue.Job, cbID string, i int) (mine, rest []queue.Job) {
	n := 0
	for n < len(jobs) && eventOfJob(jobs[n].ID, cbID) == i {
		n++
	}
	return jobs[:n], jobs[n:]
}

// splitSkips returns the once skips of event i, which start skips, and
// the skips after them.
func splitSkips(skips []queue.OnceSkip, i int) (mine, rest []queue.OnceSkip) {
	n := 0
	for n < len(skips) && skips[n].Event == i {
		n++
	}
	return skips[:n], skips[n:]
}

// traceLine is a stored job update: the update and its callback.
type traceLine struct {
	Callback string `json:"cb"`
	JobUpdate
}

// eachEvent calls fn with every event of a stored events message that
// pre (nil: every line) lets through, its id set, until fn returns false;
// it says whether fn wanted more. pre sees the stored line before it is
// decoded: decoding is most of what reading costs.
func eachEvent(m queue.RecordedMsg, pre func(line []byte) bool, fn func(*Event) bool) (bool, error) {
	data := m.Data
	for i := 0; len(data) > 0; i++ {
		line := data
		if n := bytes.IndexByte(data, '\n'); n >= 0 {
			line, data = data[:n], data[n+1:]
		} else {
			data = nil
		}
		if pre != nil && !pre(line) {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return false, fmt.Errorf("recorded events at %d: %w", m.Seq, err)
		}
		e.ID = eventID(m.Seq, i)
		if !fn(&e) {
			return false, nil
		}
	}
	return true, nil
}

// prefilter returns what a stored line must contain for f to select its
// event (nil: anything): the quoted values f compares, found as bytes
// before a line is decoded. A line with them may still not match: f.Matches
// decides.
func (f *Filter) prefilter() func(line []byte) bool {
	var must [][]byte
	values := []string{f.Account, f.Command}
	if f.Outcome != "unmatched" { // any other rule filter needs the rule named
		values = append(values, f.Rule)
	}
	for _, v := range values {
		if v != "" {
			must = append(must, imevent.AppendJSONString(nil, v))
		}
	}
	switch f.Outcome {
	case "denied":
		must = append(must, []byte(`"decision":`))
	case "skipped":
		must = append(must, []byte(`"once_skipped":`))
	}
	if len(must) == 0 && f.Outcome != "failed" {
		return nil
	}
	failed := f.Outcome == "failed"
	return func(line []byte) bool {
		for _, m := range must {
			if !bytes.Contains(line, m) {
				return false
			}
		}
		return !failed || bytes.Contains(line, []byte(`"errors":`)) || bytes.Contains(line, []byte(`"store_error":`))
	}
}

// appendCompact appends src, a flat JSON object as imevent.AppendEventJSON
// writes it (string and integer members only), without its empty members
// ("" and 0): they are most of a typical event's bytes, and decode to the
// same event. Anything else is appended as it is.
func appendCompact(dst, src []byte) []byte {
	if len(src) < 2 || src[0] != '{' {
		return append(dst, src...)
	}
	start := len(dst)
	dst = append(dst, '{')
	first := true
	for i := 1; i < len(src) && src[i] != '}'; {
		vs, end, ok := member(src, i)
		if !ok {
			return append(dst[:start], src...)
		}
		if v := src[vs:end]; !(len(v) == 2 && v[0] == '"') && !(len(v) == 1 && v[0] == '0') {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, src[i:end]...)
		}
		i = end
		if i < len(src) && src[i] == ',' {
			i++
		}
	}
	return append(dst, '}')
}

// member reads the object member starting at i ("key":value) and returns
// where its value starts and where it ends; ok is false for anything but
// a string or a number.
func member(src []byte, i int) (value, end int, ok bool) {
	if src[i] != '"' {
		return 0, 0, false
	}
	i = skipString(src, i)
	if i >= len(src) || src[i] != ':' {
		return 0, 0, false
	}
	i++
	value = i
	if i < len(src) && src[i] == '"' {
		return value, skipString(src, i), true
	}
	for i < len(src) && src[i] != ',' && src[i] != '}' {
		if src[i] == '{' || src[i] == '[' {
			return 0, 0, false
		}
		i++
	}
	return value, i, true
}

// skipString returns the index after the JSON string starting at i.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// head reads the callback id (quoted) and the receipt time a stored line
// starts with (appendLine), without decoding the line.
func head(line []byte) (callbackID []byte, received time.Time, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(`{"callback_id":`))
	if !found || len(rest) == 0 {
		return nil, received, false
	}
	end := skipString(rest, 0)
	callbackID, rest = rest[:end], rest[end:]
	if rest, found = bytes.CutPrefix(rest, []byte(`,"received":"`)); !found {
		return nil, received, false
	}
	ts, _, found := bytes.Cut(rest, []byte(`"`))
	if !found {
		return nil, received, false
	}
	received, err := time.Parse(time.RFC3339Nano, string(ts))
	return callbackID, received, err == nil
}

// eachMatched calls fn with each rule of a stored line's "matched",
// without decoding the line.
func eachMatched(line []byte, fn func(rule string)) {
	_, rest, found := bytes.Cut(line, []byte(`,"matched":[`))
	for found && len(rest) > 0 && rest[0] == '"' {
		end := skipString(rest, 0)
		q := rest[:end]
		if len(q) < 2 || q[len(q)-1] != '"' {
			return
		}
		if bytes.IndexByte(q, '\\') < 0 {
			fn(string(q[1 : len(q)-1]))
		} else if s, err := strconv.Unquote(string(q)); err == nil {
			fn(s)
		}
		rest = rest[end:]
		if len(rest) == 0 || rest[0] != ',' {
			return
		}
		rest = rest[1:]
	}
}
