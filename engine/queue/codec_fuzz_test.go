package queue

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// FuzzJobsMatchJSON is the job codec's differential fuzz target for whole
// jobs, where FuzzParamsMatchJSON covers params alone and FuzzDecode only
// robustness: jobs with every field drawn from the fuzzed values are
// stored as Enqueue and the committer store them (a group of callbacks) and
// as a retry stores one job (appendJob with its attempt and times), and
// must come back exactly as format 1, encoding/json of the job, carried
// them (checkJob), or be refused by both encodings. Events are compact
// JSON, as the engine hands over (AppendEventJSON is json.Marshal's
// output); a job may share the previous job's event.
func FuzzJobsMatchJSON(f *testing.F) {
	f.Add("id", "match-id1-equality", "log", "alice|bob", "", "id1", int64(3), int64(time.Second), int64(1800000000), uint32(123456789), uint64(1), uint16(0))
	f.Add("j\xff", "r\u2028", "<&>", "\x00", "im: 500 \xff", "\"\\", int64(-1), int64(-5), int64(-1), uint32(999999999), uint64(42), uint16(0xffff))
	f.Add("", "", "", "", "", "", int64(0), int64(0), int64(0), uint32(0), uint64(0), uint16(0x5a5a))
	f.Fuzz(func(t *testing.T, s0, s1, s2, s3, s4, s5 string, n0, n1, sec int64, nsec uint32, seed uint64, shape uint16) {
		strs := [...]string{s0, s1, s2, s3, s4, s5}
		pick := func(i int) string { return strs[(i+int(shape))%len(strs)] }
		// Years 1 to 9998, where encoding/json can write the time in any
		// zone.
		const minSec, maxSec = -62135596800, 253370764800
		when := func(k int64) time.Time {
			s := sec + k
			if s < minSec || s > maxSec {
				s = minSec + int64(uint64(s)%uint64(maxSec-minSec))
			}
			return time.Unix(s, int64(nsec%uint32(time.Second)))
		}
		r := rand.New(rand.NewPCG(seed, uint64(shape)))
		var event json.RawMessage
		job := func(id string, i int) Job {
			bit := func(b int) bool { return shape>>((b+i)%16)&1 == 1 }
			j := Job{
				Job: actions.Job{
					ID: id, Rule: pick(i + 1), Action: pick(i + 2), Attempt: int(n0),
				},
				Retry:     Retry{Attempts: int(n1), Backoff: time.Duration(n0), MaxBackoff: time.Duration(-n1)},
				OnceKey:   pick(i + 3),
				LastError: pick(i + 4),
			}
			if bit(0) {
				j.Params = map[string]any{}
				for range r.IntN(6) {
					j.Params[randString(r)] = randValue(r, 0)
				}
				if bit(1) {
					j.Params["message"] = pick(i) + " -> " + pick(i+5)
				}
			}
			if bit(2) || event == nil {
				e, err := json.Marshal(map[string]any{"From_Account": pick(i), "To_Account": pick(i + 5), "PairIndex": i})
				if err != nil {
					t.Fatal(err)
				}
				event = e
			}
			if !bit(3) {
				j.Event = event // often the previous job's: stored once
			}
			if bit(4) {
				j.Due = when(int64(i))
			}
			if bit(5) {
				j.FirstAttempt = when(-int64(i))
			}
			if bit(6) {
				j.LastAttempt = when(n1 % 1000)
			}
			return j
		}

		// A group of callbacks, as Enqueue and the committer store them.
		var body []byte
		var ids []string
		var cbs [][]Job
		for c := range 1 + int(shape%3) {
			id := pick(c) + "-cb-" + strconv.Itoa(c)
			var jobs []Job
			for i := range 1 + int(shape>>2%3) {
				jobs = append(jobs, job(id+"-"+strconv.Itoa(i), c+i))
			}
			_, jerr := json.Marshal(jobs)
			b, err := appendCallback(body, id, jobs)
			if (jerr == nil) != (err == nil) {
				t.Fatalf("encoding/json says %v, format 2 %v, for %#v", jerr, err, jobs)
			}
			if err != nil {
				return
			}
			body = b
			ids = append(ids, id)
			cbs = append(cbs, jobs)
		}
		checkGroup(t, body, ids, cbs)

		// One job with its attempt and times, as a retry stores it.
		want := job("retry", int(shape%7))
		data, err := appendJob(appendHeader(nil, 1), &want, nil)
		if _, jerr := json.Marshal(want); (jerr == nil) != (err == nil) {
			t.Fatalf("encoding/json says %v, format 2 %v, for %#v", jerr, err, want)
		}
		if err != nil {
			return
		}
		one, err := decodeJobs(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 1 {
			t.Fatalf("%d jobs, want 1", len(one))
		}
		checkJob(t, one[0], want)
	})
}
