package actions

import (
	"encoding/json"
	"testing"
)

func TestDeliveryID(t *testing.T) {
	const event = `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alice","To_Account":"bob","PairIndex":0}`
	job := func(id, rule, ev string) Job { return Job{ID: id, Rule: rule, Event: json.RawMessage(ev)} }
	base := job(JobID("cb1", 0, 0, 1), "welcome", event).DeliveryID()
	if len(base) != 32 {
		t.Fatalf("id %q, want 32 hex digits", base)
	}
	// Another copy of the callback: another callback id, and another
	// place among the matches (rules reloaded), same content.
	if got := job(JobID("cb2", 0, 3, 1), "welcome", event).DeliveryID(); got != base {
		t.Errorf("a copy of the callback got %s, want %s", got, base)
	}
	for name, other := range map[string]Job{
		"another action":   job(JobID("cb1", 0, 0, 2), "welcome", event),
		"another rule":     job(JobID("cb1", 0, 0, 1), "audit", event),
		"another pair":     job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alice","To_Account":"carol"}`),
		"another time":     job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000124,"From_Account":"alice","To_Account":"bob"}`),
		"another command":  job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendDelete","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alice","To_Account":"bob"}`),
		"another app":      job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000001,"EventTime":1700000000123,"From_Account":"alice","To_Account":"bob"}`),
		"shifted accounts": job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alic","To_Account":"ebob"}`),
		// Another event about the pair in the same millisecond (or the
		// same second, when EventTime comes from RequestTime): any field
		// tells it apart.
		"another client command": job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alice","To_Account":"bob","PairIndex":0,"ClientCmd":"friend_response"}`),
		"another place":          job(JobID("cb1", 0, 0, 1), "welcome", `{"CallbackCommand":"Sns.CallbackFriendAdd","SdkAppid":1400000000,"EventTime":1700000000123,"From_Account":"alice","To_Account":"bob","PairIndex":1}`),
	} {
		if got := other.DeliveryID(); got == base {
			t.Errorf("%s: same delivery id %s", name, got)
		}
	}
	// Without an EventTime two events about one pair cannot be told apart:
	// the job id (unique per callback received) stands in.
	for _, ev := range []string{`{"From_Account":"alice","To_Account":"bob"}`, `{"EventTime":0}`, `not json`, ``} {
		j := job("cb9-0-0-0", "welcome", ev)
		if got := j.DeliveryID(); got != j.ID {
			t.Errorf("event %q: delivery id %q, want the job id", ev, got)
		}
	}
}
