package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/engine/admin"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/rules"
	"github.com/friendflow/friendflow/rules/reload"
)

// fakeDLQ is a dead-letter store of fixed letters, for answers whose
// every value the test knows.
type fakeDLQ struct {
	mu      sync.Mutex
	letters []queue.DeadLetter
}

// ListDead answers every letter in one page: the fake ignores filters.
func (f *fakeDLQ) ListDead(context.Context, queue.DeadQuery) (queue.DeadPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return queue.DeadPage{DeadLetters: slices.Clone(f.letters), Total: len(f.letters)}, nil
}

func (f *fakeDLQ) DeadLetter(_ context.Context, id string) (queue.DeadLetter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.letters {
		if d.ID == id {
			return d, nil
		}
	}
	return queue.DeadLetter{}, &queue.UnknownIDsError{IDs: []string{id}}
}

// move removes the letters named (nil: all); an unknown id moves none.
func (f *fakeDLQ) move(_ context.Context, ids []string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var unknown []string
	for _, id := range ids {
		if !slices.ContainsFunc(f.letters, func(d queue.DeadLetter) bool { return d.ID == id }) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return 0, &queue.UnknownIDsError{IDs: unknown}
	}
	n := len(f.letters)
	f.letters = slices.DeleteFunc(f.letters, func(d queue.DeadLetter) bool { return ids == nil || slices.Contains(ids, d.ID) })
	return n - len(f.letters), nil
}

func (f *fakeDLQ) Replay(ctx context.Context, ids []string) (int, error) { return f.move(ctx, ids) }
func (f *fakeDLQ) Drop(ctx context.Context, ids []string) (int, error)   { return f.move(ctx, ids) }

// sweep moves every letter (the fake ignores filters and steps).
func (f *fakeDLQ) sweep(ctx context.Context, s queue.DeadSweep) (queue.SweepResult, error) {
	if s.DryRun {
		f.mu.Lock()
		defer f.mu.Unlock()
		return queue.SweepResult{N: len(f.letters)}, nil
	}
	n, err := f.move(ctx, nil)
	return queue.SweepResult{N: n}, err
}

func (f *fakeDLQ) ReplayWhere(ctx context.Context, s queue.DeadSweep) (queue.SweepResult, error) {
	return f.sweep(ctx, s)
}

func (f *fakeDLQ) DropWhere(ctx context.Context, s queue.DeadSweep) (queue.SweepResult, error) {
	return f.sweep(ctx, s)
}

// answerTap keeps the body of the last answer to each path.
type answerTap struct {
	h    http.Handler
	mu   sync.Mutex
	last map[string][]byte
}

func (a *answerTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, r)
	a.mu.Lock()
	a.last[r.Method+" "+r.URL.Path] = rec.Body.Bytes()
	a.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// roundTrip decodes the last answer to req as the CLI does and checks
// that the decoded value encodes to the very bytes the server sent: the
// CLI's type is the server's, and it reads every key.
func roundTrip[T any](t *testing.T, tap *answerTap, req string) *T {
	t.Helper()
	tap.mu.Lock()
	raw := tap.last[req]
	tap.mu.Unlock()
	v, err := decodeAnswer[T](raw, req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(raw) {
		t.Fatalf("%s: the CLI's %T re-encodes as\n%s\nthe server sent\n%s", req, v, b.String(), raw)
	}
	return v
}

// TestAdminAnswersRoundTripThroughTheCLI: each answer the CLI reads
// (reload, rules, dlq), from an admin API in process, decoded by the
// CLI's own decoder into the type the server encoded it from.
func TestAdminAnswersRoundTripThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "greet.yaml"), adminTestRules)
	reloader := &reload.Reloader{Path: dir, Options: rules.Options{Registry: newRegistry(nil, nil)}, Logger: slog.New(slog.DiscardHandler)}
	if err := reloader.Reload("start"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store := &fakeDLQ{letters: []queue.DeadLetter{
		{ID: "job-1", Rule: "crm", Action: "webhook", LastError: "400 Bad Request", Reason: "permanent failure", Attempts: 1,
			FirstAttempt: at, LastAttempt: at, DeadAt: at.Add(time.Second), Job: queue.Job{
				Job:     actions.Job{ID: "job-1", Rule: "crm", Action: "webhook", Params: map[string]any{"url": "http://crm/hook", "secret": actions.Redacted}, Event: json.RawMessage(`{"From_Account":"alice"}`)},
				OnceKey: "welcome:alice", CallbackID: "cb-1", Errors: []queue.AttemptError{{Attempt: 1, At: at, Error: "400 Bad Request"}}}},
		{ID: "job-2", Rule: "crm", Action: "webhook", LastError: "timeout", Reason: "attempts exhausted", Attempts: 5,
			FirstAttempt: at, LastAttempt: at.Add(time.Minute), DeadAt: at.Add(time.Minute)},
	}}
	a := admin.New()
	admin.MountRules(a, reloader, 1400000000)
	admin.MountDLQ(a, store)
	tap := &answerTap{h: a, last: map[string][]byte{}}
	srv := httptest.NewServer(tap)
	defer srv.Close()

	cli := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(append(args, "--admin-url", srv.URL), &out, &errOut, func(string) string { return "" }); code != wantCode {
			t.Fatalf("%s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	hash := reloader.Current().Hash()

	out := cli(0, "rules")
	v := roundTrip[admin.RulesView](t, tap, "GET /rules")
	if v.Hash != hash || len(v.Files) != 1 || len(v.Rules) != 1 || v.Rules[0].Name != "greet" || v.Status.Reloads != 1 ||
		!strings.Contains(out, "serving 1 rules from 1 files, hash "+hash) {
		t.Errorf("rules: %+v\n%s", v, out)
	}
	out = cli(0, "reload")
	if r := roundTrip[admin.Reloaded](t, tap, "POST /reload"); *r != (admin.Reloaded{Hash: hash, OK: true, Rules: 1}) || out != "ok: 1 rules loaded, hash "+hash+"\n" {
		t.Errorf("reload: %+v\n%s", r, out)
	}
	writeFile(t, filepath.Join(dir, "greet.yaml"), adminTestRules+"  - name: greet\n    actions: [{ nosuch: {} }]\n")
	out = cli(1, "reload")
	r := roundTrip[admin.ReloadFailed](t, tap, "POST /reload")
	if r.OK || r.ServingHash != hash || len(r.Problems) == 0 || !strings.Contains(out, r.Problems[0].String()) || !strings.Contains(out, "the last good rules keep serving, hash "+hash) {
		t.Errorf("failed reload: %+v\n%s", r, out)
	}
	if cli(0, "rules"); roundTrip[admin.RulesView](t, tap, "GET /rules").Status.LastError == "" {
		t.Error("GET /rules after a failed reload: no last error")
	}

	out = cli(0, "dlq", "list")
	list := roundTrip[admin.DeadLetterList](t, tap, "GET /dlq")
	want := []admin.DeadLetterView{
		{ID: "job-1", Rule: "crm", Action: "webhook", LastError: "400 Bad Request", Attempts: 1, FirstAttempt: at, LastAttempt: at},
		{ID: "job-2", Rule: "crm", Action: "webhook", LastError: "timeout", Attempts: 5, FirstAttempt: at, LastAttempt: at.Add(time.Minute)},
	}
	if list.Count != 2 || !reflect.DeepEqual(list.DeadLetters, want) || !strings.Contains(out, "2 dead letters") {
		t.Errorf("dlq list: %+v\n%s", list, out)
	}
	out = cli(0, "dlq", "show", "job-1")
	d := roundTrip[admin.DeadLetterDetail](t, tap, "GET /dlq/job-1")
	if d.DeadLetterView != want[0] || d.Reason != "permanent failure" || !d.DeadAt.Equal(at.Add(time.Second)) || d.CallbackID != "cb-1" ||
		d.OnceKey != "welcome:alice" || d.Params["secret"] != actions.Redacted || len(d.Errors) != 1 || d.Errors[0].Error != "400 Bad Request" ||
		!strings.Contains(string(d.Event), `"From_Account": "alice"`) || !strings.Contains(out, "once key:") {
		t.Errorf("dlq show: %+v\n%s", d, out)
	}
	out = cli(1, "dlq", "show", "no-such-job")
	if e := roundTrip[admin.ErrorBody](t, tap, "GET /dlq/no-such-job"); !slices.Equal(e.UnknownIDs, []string{"no-such-job"}) || !strings.Contains(out, e.Error) {
		t.Errorf("dlq show of an unknown id: %+v\n%s", e, out)
	}
	out = cli(1, "dlq", "replay", "job-1", "no-such-job")
	if m := roundTrip[admin.DeadLettersMoved](t, tap, "POST /dlq/replay"); m.Replayed == nil || m.Count() != 0 || m.Dropped != nil ||
		!slices.Equal(m.UnknownIDs, []string{"no-such-job"}) || !strings.Contains(out, "404") || !strings.Contains(out, m.Error) {
		t.Errorf("replay of an unknown id: %+v\n%s", m, out)
	}
	out = cli(0, "dlq", "replay", "job-1")
	if m := roundTrip[admin.DeadLettersMoved](t, tap, "POST /dlq/replay"); m.Count() != 1 || out != "1 replayed\n" {
		t.Errorf("replay: %+v\n%s", m, out)
	}
	out = cli(0, "dlq", "drop", "--all", "--yes")
	if m := roundTrip[admin.DeadLettersMoved](t, tap, "POST /dlq/drop"); m.Dropped == nil || m.Count() != 1 || out != "1 dropped\n" {
		t.Errorf("drop: %+v\n%s", m, out)
	}
}
