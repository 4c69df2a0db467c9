package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
)

func jsonLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
}

func TestLogDo(t *testing.T) {
	var buf bytes.Buffer
	l := &actions.Log{Logger: jsonLogger(&buf, slog.LevelDebug), Accounts: []string{"From_Account", "To_Account", "Initiator_Account", "Requester_Account", "Admin_Account"}}
	p, err := l.Spec().Check(map[string]any{
		"message": "welcomed alice", "level": "warn",
		"fields": map[string]any{"z": 1, "a": "x", "m": map[string]any{"k": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	job := actions.Job{
		ID: "job-1", Rule: "welcome",
		Event: json.RawMessage(`{"CallbackCommand":"Sns.CallbackFriendAdd","From_Account":"alice","To_Account":"bob","Initiator_Account":"alice","Remark":"r"}`),
	}
	if err := l.Do(context.Background(), job, p); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	want := map[string]any{
		"level": "WARN", "msg": "welcomed alice", "rule": "welcome", "job_id": "job-1",
		"command": "Sns.CallbackFriendAdd", "from": "alice", "to": "bob", "initiator": "alice",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	for _, k := range []string{"requester", "admin", "Remark"} {
		if _, ok := rec[k]; ok {
			t.Errorf("empty or uninteresting field %s logged", k)
		}
	}
	f, _ := rec["fields"].(map[string]any)
	if f["a"] != "x" || f["z"] != 1.0 || f["m"].(map[string]any)["k"] != true {
		t.Errorf("fields %v", rec["fields"])
	}
	// Fields come out in a stable order.
	if line := buf.String(); strings.Index(line, `"a":`) > strings.Index(line, `"m":`) || strings.Index(line, `"m":`) > strings.Index(line, `"z":`) {
		t.Errorf("fields not sorted: %s", line)
	}
}

func TestLogDefaultsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	l := &actions.Log{Logger: jsonLogger(&buf, slog.LevelInfo)}
	p, err := l.Spec().Check(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Do(context.Background(), actions.Job{ID: "j", Rule: "r", Event: json.RawMessage(`not json`)}, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"msg":"rule matched"`) || !strings.Contains(buf.String(), `"level":"INFO"`) {
		t.Errorf("defaults: %s", buf.String())
	}
	if strings.Contains(buf.String(), "command") {
		t.Errorf("an undecodable event produced accounts: %s", buf.String())
	}
	buf.Reset()
	p["level"] = "debug"
	if err := l.Do(context.Background(), actions.Job{}, p); err != nil || buf.Len() != 0 {
		t.Errorf("debug line written at info level: %v %s", err, buf.String())
	}
	if _, err := l.Spec().Check(map[string]any{"level": "trace"}); err == nil {
		t.Error("unknown level accepted")
	}
	// Params that skipped Check do not panic.
	if err := l.Do(context.Background(), actions.Job{}, map[string]any{}); err != nil {
		t.Error(err)
	}
	if !strings.Contains(buf.String(), "rule matched") {
		t.Errorf("unchecked params: %s", buf.String())
	}
	// A nil Logger means slog.Default.
	if err := (&actions.Log{}).Do(context.Background(), actions.Job{}, map[string]any{"level": "debug", "message": "m"}); err != nil {
		t.Error(err)
	}
}
