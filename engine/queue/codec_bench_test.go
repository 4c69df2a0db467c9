package queue

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/friendflow/friendflow/actions"
)

// codecBenchJobs returns a callback's jobs as the engine builds them in the
// load benchmark (bench/load.sh): three pairs, each matching one rule whose
// action is a debug log, so three jobs with an event of about 400 bytes
// each.
func codecBenchJobs(cb string) []Job {
	rules := []string{"match-id1-equality", "match-id2-in", "match-id3-regex"}
	jobs := make([]Job, 3)
	for i := range jobs {
		to := "id" + strconv.Itoa(i+1)
		event := `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"ClientIP":"127.0.0.1","OptPlatform":"RESTAPI",` +
			`"From_Account":"id","To_Account":"` + to + `","Initiator_Account":"id","ClientCmd":"friend_add","Admin_Account":"",` +
			`"ForceFlag":1,"AddSource":"","AddWording":"","Remark":"","GroupName":"","Response_Action":"","Requester_Account":"",` +
			`"Tag_Profile_IM_Nick":"","Tag_Profile_IM_Level":0,"EventTime":1764115200000}`
		jobs[i] = Job{Job: actions.Job{
			ID:     cb + "-" + strconv.Itoa(i) + "-0-0",
			Rule:   rules[i],
			Action: "log",
			Params: map[string]any{"message": rules[i] + ": id -> " + to, "level": "debug"},
			Event:  json.RawMessage(event),
		}}
	}
	return jobs
}

// BenchmarkEncodeCallback is Enqueue's encoding of one callback.
func BenchmarkEncodeCallback(b *testing.B) {
	jobs := codecBenchJobs("cbid")
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendCallback(buf[:0], "cbid", jobs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}

// BenchmarkDecodeGroup is the worker's decoding of a message holding 16
// such callbacks.
func BenchmarkDecodeGroup(b *testing.B) {
	var data []byte
	for c := range 16 {
		id := "cbid" + strconv.Itoa(c)
		var err error
		if data, err = appendCallback(data, id, codecBenchJobs(id)); err != nil {
			b.Fatal(err)
		}
	}
	data = append(appendHeader(nil, 48), data...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJobs(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeCallbackFormat1 is the first release's encoding of the same
// callback (JSON), for comparison.
func BenchmarkEncodeCallbackFormat1(b *testing.B) {
	jobs := codecBenchJobs("cbid")
	var data []byte
	b.ReportAllocs()
	for b.Loop() {
		js := make([]Job, len(jobs))
		for i := range jobs {
			js[i] = jobs[i]
			js[i].CallbackID = "cbid"
		}
		var err error
		if data, err = json.Marshal(js); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data)-2), "bytes")
}

// BenchmarkDecodeGroupFormat1 decodes the same group in the first release's
// JSON, as the worker still does for such messages.
func BenchmarkDecodeGroupFormat1(b *testing.B) {
	data := []byte(`{"v":1,"jobs":[`)
	for c := range 16 {
		id := "cbid" + strconv.Itoa(c)
		jobs := codecBenchJobs(id)
		for i := range jobs {
			jobs[i].CallbackID = id
		}
		js, err := json.Marshal(jobs)
		if err != nil {
			b.Fatal(err)
		}
		if c > 0 {
			data = append(data, ',')
		}
		data = append(data, js[1:len(js)-1]...)
	}
	data = append(data, "]}"...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJobs(data); err != nil {
			b.Fatal(err)
		}
	}
}
