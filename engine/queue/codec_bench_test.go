package queue

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/friendflow/friendflow/actions"
)

// benchEvent is about 400 bytes, like the engine's encoding of a friend event.
var benchEventJSON = `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientIP":"203.0.113.7","OptPlatform":"iOS","SdkAppid":1400000000,"PairList":null,"From_Account":"user-1234567","To_Account":"user-7654321","Initiator_Account":"user-1234567","ClientCmd":"friend_response","AddSource":"AddSource_Type_Android","AddWording":"hello there","Remark":"","GroupName":"","Response_Action":"Response_Action_AgreeAndAdd","EventTime":1700000000000,"Seq":123456}`

func codecBenchJobs(cb string) []Job {
	jobs := make([]Job, 3)
	for i := range jobs {
		id := cb + "-" + strconv.Itoa(i) + "-0-0"
		jobs[i] = Job{Job: actions.Job{
			ID: id, Rule: "log-every-pair-" + strconv.Itoa(i), Action: "log",
			Params: map[string]any{"message": id + " -> " + id + "1", "level": "debug"},
			Event:  json.RawMessage(benchEventJSON),
		}}
	}
	return jobs
}

func BenchmarkEncodeCallback(b *testing.B) {
	jobs := codecBenchJobs("cbid-0")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := appendCallback(make([]byte, 0, callbackSize("cbid-0", jobs)), "cbid-0", jobs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGroup(b *testing.B) {
	var data []byte
	for c := range 16 {
		id := "cbid-" + strconv.Itoa(c)
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
