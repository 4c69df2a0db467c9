package queue

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/bench/benchcpu"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/examples/callbacks"
	"github.com/friendflow/friendflow/rules/imevent"
)

// The job codec's gain per callback of the load benchmark (bench/load.sh):
// each callback stores 3 jobs (one debug log per pair), Enqueue encodes
// them, the committer concatenates about 14 callbacks into one message
// (docs/performance.md), and a worker decodes the message. One operation
// here is that for a group of gainGroup callbacks; the ns/callback metric
// is the time per callback, cpu-ns/callback the process's CPU time per
// callback (garbage collection included), which unlike the wall time
// hardly moves when other processes compete for the cores. impl=fast is format 2 (codec.go), impl=lib is
// format 1, encoding/json of the jobs, as the first release stored them and
// decodeJobs still reads them:
//
//	go test -run '^$' -bench Gain -benchmem -cpu 1 -count 8 ./engine/queue/ | benchstat -col /impl -

// gainGroup is the callbacks per message under the load benchmark.
const gainGroup = 14

// gainCallback is one callback's jobs as the engine builds them for the
// load benchmark's sample (examples/callbacks/friend_add.json) and rules
// (bench/genrules.sh): an event per pair encoded by AppendEventJSON, one
// log job per pair with the rule's rendered message and the default retry.
func gainCallback(tb testing.TB, id string) []Job {
	tb.Helper()
	data := callbacks.Must("friend_add.json")
	cb := &imcallback.Callback{ID: id, Command: imevent.CmdFriendAdd, SdkAppid: 1400000000,
		ClientIP: "127.0.0.1", OptPlatform: "RESTAPI", ReceivedAt: time.UnixMilli(1764115200000)}
	if err := imcallback.Decode(data, cb); err != nil {
		tb.Fatal(err)
	}
	rules := []string{"match-id1-equality", "match-id2-in", "match-id3-regex"}
	if len(cb.Events) != len(rules) {
		tb.Fatalf("%d events, want %d", len(cb.Events), len(rules))
	}
	var evbuf []byte
	jobs := make([]Job, len(cb.Events))
	for i := range cb.Events {
		ev := &cb.Events[i]
		start := len(evbuf)
		evbuf = imevent.AppendEventJSON(evbuf, ev)
		jobs[i] = Job{
			Job: actions.Job{
				ID:     id + "-" + strconv.Itoa(i) + "-0-0",
				Rule:   rules[i],
				Action: "log",
				Params: map[string]any{"level": "debug", "message": rules[i] + ": " + ev.From_Account + " -> " + ev.To_Account},
				Event:  evbuf[start:len(evbuf):len(evbuf)],
			},
			Retry: Retry{Attempts: 10, Backoff: time.Second, MaxBackoff: 5 * time.Minute},
		}
	}
	return jobs
}

// gainFormat2 encodes the callbacks as Enqueue and the committer do.
func gainFormat2(bufs [][]byte, group []byte, ids []string, cbs [][]Job) ([]byte, error) {
	n := 0
	for c := range cbs {
		var err error
		if bufs[c], err = appendCallback(bufs[c][:0], ids[c], cbs[c]); err != nil {
			return nil, err
		}
		n += len(cbs[c])
	}
	group = appendHeader(group[:0], n)
	for c := range bufs {
		group = append(group, bufs[c]...)
	}
	return group, nil
}

// gainFormat1 encodes the callbacks as the first release did: json.Marshal
// of each callback's jobs (CallbackID set), joined into one envelope.
func gainFormat1(group []byte, ids []string, cbs [][]Job) ([]byte, error) {
	group = append(group[:0], `{"v":1,"jobs":[`...)
	for c := range cbs {
		js := make([]Job, len(cbs[c]))
		for i := range js {
			js[i] = cbs[c][i]
			js[i].CallbackID = ids[c]
		}
		b, err := json.Marshal(js)
		if err != nil {
			return nil, err
		}
		if c > 0 {
			group = append(group, ',')
		}
		group = append(group, b[1:len(b)-1]...)
	}
	return append(group, "]}"...), nil
}

func BenchmarkGainJobCodec(b *testing.B) {
	ids := make([]string, gainGroup)
	cbs := make([][]Job, gainGroup)
	for c := range cbs {
		ids[c] = imcallback.NewID()
		cbs[c] = gainCallback(b, ids[c])
	}
	bufs := make([][]byte, gainGroup)
	// Both formats give the worker the same jobs.
	g2, err := gainFormat2(bufs, nil, ids, cbs)
	if err != nil {
		b.Fatal(err)
	}
	g1, err := gainFormat1(nil, ids, cbs)
	if err != nil {
		b.Fatal(err)
	}
	j2, err := decodeJobs(g2)
	if err != nil {
		b.Fatal(err)
	}
	j1, err := decodeJobs(g1)
	if err != nil {
		b.Fatal(err)
	}
	if len(j2) != 3*gainGroup || !reflect.DeepEqual(j1, j2) {
		b.Fatalf("format 1 and format 2 decode differently:\n%+v\n%+v", j1, j2)
	}
	for _, c := range []struct {
		impl   string
		encode func(group []byte) ([]byte, error)
	}{
		{"fast", func(group []byte) ([]byte, error) { return gainFormat2(bufs, group, ids, cbs) }},
		{"lib", func(group []byte) ([]byte, error) { return gainFormat1(group, ids, cbs) }},
	} {
		b.Run("impl="+c.impl, func(b *testing.B) {
			var group []byte
			benchcpu.Loop(b, gainGroup, func() {
				var err error
				if group, err = c.encode(group); err != nil {
					b.Fatal(err)
				}
				if _, err := decodeJobs(group); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*gainGroup), "ns/callback")
		})
	}
}
