package queue

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Job message bodies.
//
// Format 1 (the first release) is JSON: {"v":1,"jobs":[...]}. It is still
// read, so that messages stored by that release run after an upgrade, but
// no longer written: reflection over the jobs, compacting the events and
// building the params maps cost more CPU than the rest of the enqueue.
//
// Format 2 is binary. Integers are varints (encoding/binary: uvarint, and
// zigzag varint for signed values); a string or byte string is a uvarint
// length and the bytes.
//
//	message = 0x02, uvarint job count, job × count
//	job     = ID, Rule, Action, CallbackID, OnceKey (strings),
//	          Attempt, Retry.Attempts, Retry.Backoff, Retry.MaxBackoff (varints; durations in ns),
//	          Due, FirstAttempt, LastAttempt (times),
//	          LastError (string), Params (value: nil or a map), Event
//	time    = 0x00 (the zero time) | 0x01, varint Unix seconds, uvarint nanoseconds
//	Event   = uvarint 0: none | 1: the same bytes as the previous job's event
//	          in the message | n ≥ 2: n-2 bytes, stored as given
//	value   = tag byte, then: nil, false, true: nothing | string: a string |
//	          int: varint | float: 8 bytes, IEEE 754 little-endian |
//	          array: uvarint count, values | map: uvarint count, (string, value) pairs |
//	          json: a string holding JSON, for any other Go value
//
// A message is the header and the jobs, nothing else, so a group of
// callbacks is the header followed by the callbacks' encodings as Enqueue
// made them, concatenated without re-encoding. The first byte tells the
// formats apart ('{' is JSON). A change of layout takes a new format number;
// the decoder keeps reading the old ones.
//
// Format 3 is format 2 with one more string at the end of every job record:
// TraceParent, the W3C traceparent of the callback's span. A queue writes it
// only when tracing is on (Config.Tracer), so that without tracing the
// messages stay format 2, readable by the releases that know only format 2.
//
// Format 4 is format 3 with, at the end of every job record, Cancel.On (a
// uvarint count and that many strings; 0: no Cancel) and Cancel.Created
// (a time). Only a callback with a job that has a Cancel is written in it (a group of
// callbacks is never mixed), so messages without cancel_on stay format 2
// or 3.
//
// Values decode to what json.Unmarshal into map[string]any would give for
// the JSON encoding of the params (format 1's round trip): every number is a
// float64, every array an []any, every object a map[string]any, strings are
// valid UTF-8. Values of other types are stored as JSON and decoded with
// json.Unmarshal, so the identity holds for them too; encoding fails where
// json.Marshal fails (NaN, channels, cycles). Strings get the same
// replacement of invalid UTF-8 as in JSON. The event is the exception: it is
// stored as given, without validation (the engine hands over json.Marshal
// output).
const (
	formatV2 = 0x02
	formatV3 = 0x03
	formatV4 = 0x04
)

// layout is the format a queue writes: formatV2, or formatV3 with tracing,
// or formatV4 for jobs with cancel_on.
type layout byte

// Value tags of format 2.
const (
	tagNil byte = iota
	tagFalse
	tagTrue
	tagString
	tagInt   // an integer, or a float64 with an integral value (not -0)
	tagFloat // any other float64
	tagArray
	tagMap
	tagJSON
)

// Event field of format 2.
const (
	eventNone = 0
	eventSame = 1 // the previous job's event
	eventLen  = 2 // added to the length of an event stored in full
)

// maxNativeDepth is how deeply params nest before the rest is stored as
// JSON: encoding/json then detects cycles, which would otherwise recurse
// without end here, and the decoder's recursion stays bounded.
const maxNativeDepth = 64

var (
	errTruncated  = errors.New("truncated")
	errTooDeep    = errors.New("params nested too deeply")
	errNoPrevious = errors.New("event refers to a previous job, but this is the first")
)

// appendHeader starts a format 2 message of n jobs.
func appendHeader(dst []byte, n int) []byte { return layout(formatV2).header(dst, n) }

// appendCallback appends the format 2 records of one callback's jobs.
func appendCallback(dst []byte, callbackID string, jobs []Job) ([]byte, error) {
	return layout(formatV2).callback(dst, callbackID, jobs)
}

// header starts a message of n jobs.
func (l layout) header(dst []byte, n int) []byte {
	dst = append(dst, byte(l))
	return binary.AppendUvarint(dst, uint64(n))
}

// callback appends the records of one callback's jobs, as Enqueue
// stores them: CallbackID set, no attempt made. A job whose event is the
// previous job's refers to it instead of repeating it: an event matched by
// several rules, or a rule with several actions, is stored once.
func (l layout) callback(dst []byte, callbackID string, jobs []Job) ([]byte, error) {
	var err error
	for i := range jobs {
		var prev []byte
		if i > 0 {
			prev = jobs[i-1].Event
		}
		j := jobs[i]
		j.CallbackID, j.Attempt = callbackID, 0
		if dst, err = l.job(dst, &j, prev); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
	}
	return dst, nil
}

// job appends one job record in layout l.
func (l layout) job(dst []byte, j *Job, prev []byte) ([]byte, error) {
	dst, err := appendJob(dst, j, prev)
	if err == nil && l >= formatV3 {
		dst = appendString(dst, j.TraceParent)
	}
	if err == nil && l == formatV4 {
		var c Cancel
		if j.Cancel != nil {
			c = *j.Cancel
		}
		dst = binary.AppendUvarint(dst, uint64(len(c.On)))
		for _, cmd := range c.On {
			dst = appendString(dst, cmd)
		}
		dst = appendTime(dst, c.Created)
	}
	return dst, err
}

// appendJob appends one format 2 job record. prev is the previous record's
// event in the message, nil if there is none.
func appendJob(dst []byte, j *Job, prev []byte) ([]byte, error) {
	dst = appendString(dst, j.ID)
	dst = appendString(dst, j.Rule)
	dst = appendString(dst, j.Action)
	dst = appendString(dst, j.CallbackID)
	dst = appendString(dst, j.OnceKey)
	dst = binary.AppendVarint(dst, int64(j.Attempt))
	dst = binary.AppendVarint(dst, int64(j.Retry.Attempts))
	dst = binary.AppendVarint(dst, int64(j.Retry.Backoff))
	dst = binary.AppendVarint(dst, int64(j.Retry.MaxBackoff))
	dst = appendTime(dst, j.Due)
	dst = appendTime(dst, j.FirstAttempt)
	dst = appendTime(dst, j.LastAttempt)
	dst = appendString(dst, j.LastError)
	var err error
	if j.Params == nil {
		dst = append(dst, tagNil)
	} else if dst, err = appendMap(dst, j.Params, 0); err != nil {
		return nil, err
	}
	switch {
	case len(j.Event) == 0:
		dst = binary.AppendUvarint(dst, eventNone)
	case len(prev) > 0 && bytes.Equal(j.Event, prev):
		dst = binary.AppendUvarint(dst, eventSame)
	default:
		dst = binary.AppendUvarint(dst, uint64(len(j.Event))+eventLen)
		dst = append(dst, j.Event...)
	}
	return dst, nil
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// appendString appends s as JSON would carry it: each byte that is not
// part of valid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = jsonText(s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// jsonText replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, byte by byte like encoding/json (strings.ToValidUTF8 replaces a
// run of them with one).
func jsonText(s string) string {
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// appendValue appends one params value. The types the rules' rendering
// produces are encoded natively; anything else goes through JSON.
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth >= maxNativeDepth {
		return appendJSON(dst, v)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, tagNil), nil
	case string:
		return appendString(append(dst, tagString), v), nil
	case bool:
		if v {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case float64:
		return appendFloat(dst, v)
	case []any:
		return appendArray(dst, v, depth)
	case []string:
		if v == nil {
			return append(dst, tagNil), nil
		}
		dst = append(dst, tagArray)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		for _, e := range v {
			dst = appendString(append(dst, tagString), e)
		}
		return dst, nil
	case map[string]any:
		if v == nil {
			return append(dst, tagNil), nil
		}
		return appendMap(dst, v, depth)
	}
	if dst, ok, err := appendInteger(dst, v); ok {
		return dst, err
	}
	// float32 (formatted with 32-bit precision), json.Number, []byte
	// (base64), Marshalers, structs, other maps and slices, named types.
	return appendJSON(dst, v)
}

// appendInteger appends a value of Go's integer types; ok is false for
// any other type.
func appendInteger(dst []byte, v any) (_ []byte, ok bool, _ error) {
	var i int64
	switch v := v.(type) {
	case int:
		i = int64(v)
	case int64:
		i = v
	case int32:
		i = int64(v)
	case int16:
		i = int64(v)
	case int8:
		i = int64(v)
	case uint32:
		i = int64(v)
	case uint16:
		i = int64(v)
	case uint8:
		i = int64(v)
	case uint:
		dst, err := appendUint(dst, uint64(v))
		return dst, true, err
	case uint64:
		dst, err := appendUint(dst, v)
		return dst, true, err
	default:
		return dst, false, nil
	}
	return appendInt(dst, i), true, nil
}

// appendArray appends a slice of values, nil as nil.
func appendArray(dst []byte, a []any, depth int) ([]byte, error) {
	if a == nil {
		return append(dst, tagNil), nil
	}
	dst = append(dst, tagArray)
	dst = binary.AppendUvarint(dst, uint64(len(a)))
	var err error
	for _, e := range a {
		if dst, err = appendValue(dst, e, depth+1); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// appendMap appends a non-nil map.
func appendMap(dst []byte, m map[string]any, depth int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, tagMap)
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	var err error
	for k, v := range m {
		if !utf8.ValidString(k) {
			// Two keys may become one in JSON; which value survives is
			// encoding/json's business.
			return appendJSON(dst[:start], m)
		}
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		if dst, err = appendValue(dst, v, depth+1); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendInt(dst []byte, i int64) []byte {
	return binary.AppendVarint(append(dst, tagInt), i)
}

func appendUint(dst []byte, u uint64) ([]byte, error) {
	if u <= math.MaxInt64 {
		return appendInt(dst, int64(u)), nil
	}
	// JSON's decimal parses to the nearest float64, as the conversion rounds.
	return appendFloat(dst, float64(u))
}

// appendFloat stores an integral value as a varint (most numbers in params
// are), anything else as its 8 bytes.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSON(dst, f) // fails as json.Marshal does
	}
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 && !(f == 0 && math.Signbit(f)) {
		return appendInt(dst, int64(f)), nil
	}
	dst = append(dst, tagFloat)
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
}

func appendJSON(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dst = append(dst, tagJSON)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...), nil
}

// decodeJobs decodes a job message of either format.
func decodeJobs(data []byte) ([]Job, error) {
	if len(data) == 0 {
		return nil, errors.New("empty job message")
	}
	var (
		jobs []Job
		err  error
	)
	switch data[0] {
	case '{':
		jobs, err = decodeV1(data)
	case formatV2, formatV3, formatV4:
		jobs, err = decodeV2(data)
	default:
		return nil, fmt.Errorf("unknown job message format (first byte 0x%02x)", data[0])
	}
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, errors.New("job message holds no jobs")
	}
	return jobs, nil
}

// envelope is format 1.
type envelope struct {
	V    int   `json:"v"`
	Jobs []Job `json:"jobs"`
}

func decodeV1(data []byte) ([]Job, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("undecodable job message: %w", err)
	}
	if env.V != 1 {
		return nil, fmt.Errorf("job message format version %d in JSON, want 1", env.V)
	}
	return env.Jobs, nil
}

// decodeV2 decodes format 2, format 3 (format 2 with trace context) and
// format 4 (format 3 with cancel_on).
func decodeV2(data []byte) ([]Job, error) {
	d := decoder{data: data, str: string(data), off: 1}
	n, err := d.uvarint()
	if err != nil {
		return nil, fmt.Errorf("job message format %d: job count: %w", data[0], err)
	}
	// Each record takes more than one byte: a count beyond that is
	// corruption, not an allocation to attempt.
	if n > uint64(len(data)) {
		return nil, fmt.Errorf("job message format %d: %d jobs in %d bytes: %w", data[0], n, len(data), errTruncated)
	}
	jobs := make([]Job, n)
	var prev []byte
	for i := range jobs {
		err := d.job(&jobs[i], prev)
		if err == nil && data[0] >= formatV3 {
			jobs[i].TraceParent, err = d.string()
		}
		if err == nil && data[0] == formatV4 {
			err = d.cancel(&jobs[i])
		}
		if err != nil {
			return nil, fmt.Errorf("job message format %d: job %d of %d: %w", data[0], i+1, n, err)
		}
		prev = jobs[i].Event
	}
	if d.off != len(data) {
		return nil, fmt.Errorf("job message format %d: %d bytes after the last job", data[0], len(data)-d.off)
	}
	return jobs, nil
}

// decoder reads format 2. Strings are cut from str, one copy of the whole
// message, instead of being allocated one by one; events are cut from data
// (a message's body is its own: the client copies it out of its buffer).
type decoder struct {
	data []byte
	str  string
	off  int
}

func (d *decoder) job(j *Job, prev []byte) error {
	var err error
	for _, s := range [...]*string{&j.ID, &j.Rule, &j.Action, &j.CallbackID, &j.OnceKey} {
		if *s, err = d.string(); err != nil {
			return err
		}
	}
	var attempt, attempts, backoff, maxBackoff int64
	for _, i := range [...]*int64{&attempt, &attempts, &backoff, &maxBackoff} {
		if *i, err = d.varint(); err != nil {
			return err
		}
	}
	j.Attempt, j.Retry.Attempts = int(attempt), int(attempts)
	j.Retry.Backoff, j.Retry.MaxBackoff = time.Duration(backoff), time.Duration(maxBackoff)
	for _, t := range [...]*time.Time{&j.Due, &j.FirstAttempt, &j.LastAttempt} {
		if *t, err = d.time(); err != nil {
			return err
		}
	}
	if j.LastError, err = d.string(); err != nil {
		return err
	}
	if j.Params, err = d.params(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	ev, err := d.uvarint()
	switch {
	case err != nil:
		return err
	case ev == eventNone:
	case ev == eventSame:
		if prev == nil {
			return errNoPrevious
		}
		j.Event = prev
	default:
		b, err := d.bytes(ev - eventLen)
		if err != nil {
			return err
		}
		j.Event = b
	}
	return nil
}

func (d *decoder) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.data[d.off:])
	if n <= 0 {
		return 0, errTruncated
	}
	d.off += n
	return v, nil
}

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.data[d.off:])
	if n <= 0 {
		return 0, errTruncated
	}
	d.off += n
	return v, nil
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.data) {
		return 0, errTruncated
	}
	d.off++
	return d.data[d.off-1], nil
}

// span checks that n bytes follow and returns where they end.
func (d *decoder) span(n uint64) (int, error) {
	if n > uint64(len(d.data)-d.off) {
		return 0, errTruncated
	}
	return d.off + int(n), nil
}

func (d *decoder) string() (string, error) {
	n, err := d.uvarint()
	if err != nil {
		return "", err
	}
	end, err := d.span(n)
	if err != nil {
		return "", err
	}
	s := d.str[d.off:end]
	d.off = end
	return s, nil
}

// bytes returns the next n bytes, capped so that appending to them cannot
// overwrite what follows.
func (d *decoder) bytes(n uint64) ([]byte, error) {
	end, err := d.span(n)
	if err != nil {
		return nil, err
	}
	b := d.data[d.off:end:end]
	d.off = end
	return b, nil
}

func (d *decoder) time() (time.Time, error) {
	kind, err := d.byte()
	if err != nil || kind == 0 {
		return time.Time{}, err
	}
	if kind != 1 {
		return time.Time{}, fmt.Errorf("time: unknown kind %d", kind)
	}
	sec, err := d.varint()
	if err != nil {
		return time.Time{}, err
	}
	nsec, err := d.uvarint()
	if err != nil {
		return time.Time{}, err
	}
	if nsec >= uint64(time.Second) {
		return time.Time{}, fmt.Errorf("time: %d nanoseconds", nsec)
	}
	return time.Unix(sec, int64(nsec)), nil
}

// params reads a job's params: nil, a map, or JSON holding either.
func (d *decoder) params() (map[string]any, error) {
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	return nil, fmt.Errorf("a %T, not a map", v)
}

func (d *decoder) value(depth int) (any, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNil:
		return nil, nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagString:
		return d.string()
	case tagInt:
		i, err := d.varint()
		return float64(i), err
	case tagFloat:
		return d.float()
	case tagArray, tagMap:
		return d.composite(tag, depth)
	case tagJSON:
		return d.json()
	}
	return nil, fmt.Errorf("unknown value tag %d", tag)
}

func (d *decoder) float() (any, error) {
	end, err := d.span(8)
	if err != nil {
		return nil, err
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.data[d.off:end]))
	d.off = end
	return f, nil
}

// composite reads an array or a map (tag) at depth.
func (d *decoder) composite(tag byte, depth int) (any, error) {
	if depth >= maxNativeDepth {
		return nil, errTooDeep
	}
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.data)-d.off) { // every element takes a byte at least
		return nil, errTruncated
	}
	if tag == tagArray {
		a := make([]any, n)
		for i := range a {
			if a[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	m := make(map[string]any, n)
	for range n {
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// json reads a value stored as JSON (appendJSON).
func (d *decoder) json() (any, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	b, err := d.bytes(n)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("JSON value: %w", err)
	}
	return v, nil
}

// cancel reads format 4's Cancel; a job without commands has none.
func (d *decoder) cancel(j *Job) error {
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(len(d.data)-d.off) { // each takes a byte at least
		return errTruncated
	}
	c := Cancel{On: make([]string, n)}
	for i := range c.On {
		if c.On[i], err = d.string(); err != nil {
			return err
		}
	}
	if c.Created, err = d.time(); err != nil {
		return err
	}
	if n > 0 {
		j.Cancel = &c
	}
	return nil
}
