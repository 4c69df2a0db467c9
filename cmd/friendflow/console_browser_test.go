package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	adminapi "github.com/friendflow/friendflow/engine/admin"
)

// screenshotsEnv names the directory the browser test writes a screenshot
// of each console page to (docs/console/ is where they are committed):
// FRIENDFLOW_CONSOLE_SCREENSHOTS=../../docs/console go test -run Browser ./cmd/friendflow/
const screenshotsEnv = "FRIENDFLOW_CONSOLE_SCREENSHOTS"

// browserRules greet accepted requests through a webhook (whose first
// delivery is refused: a dead letter), deny requests worded like spam,
// and count requests by sender.
const browserRules = `counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
rules:
  - name: greet
    description: tell the CRM about a new friendship
    when: ClientCmd in ["friend_response", "FriendResponse"] && PairIndex == 0
    actions:
      - webhook:
          url: %s
          secret: browser-test-webhook-secret
          body: { who: "${ From_Account }", whom: "${ To_Account }" }
  - name: deny-loans
    on: [Sns.CallbackPrevFriendAdd]
    when: AddWording contains "loan"
    actions:
      - deny: { code: 38001, reason: spam }
    tests:
      - name: a loan offer is denied
        event: { CallbackCommand: Sns.CallbackPrevFriendAdd, AddWording: "cheap loan" }
        match: true
`

// eventually polls cond (an HTTP read of the instance) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// consoleToken is the admin token of the browser test's friendflow: the
// console obeys it as the rest of the admin API does.
const consoleToken = "browser-test-admin-token"

// adminRequest sends a request to the admin API with consoleToken.
func adminRequest(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp := adminRequest(t, http.MethodGet, url)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		// .ci/run installs chromium and sets FRIENDFLOW_REQUIRE_BROWSER, so
		// that CI cannot pass by skipping the browser.
		if os.Getenv("FRIENDFLOW_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium on PATH, and FRIENDFLOW_REQUIRE_BROWSER is set")
		}
		t.Skip("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
	}
	var deliveries atomic.Int32
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if deliveries.Add(1) == 1 {
			http.Error(w, "unknown customer", http.StatusBadRequest) // permanent: a dead letter
		}
	}))
	defer crm.Close()

	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(consoleToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serveForConsole(t, "--admin-token-file", tokenFile)
	writeRules(t, s.rulesDir, "rules.yaml", fmt.Sprintf(browserRules, crm.URL))
	resp := adminRequest(t, http.MethodPost, "http://"+s.admin+"/reload")
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %v", resp.Status)
	}
	resp.Body.Close()

	s.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_response",
	  "PairList":[{"From_Account":"alice","To_Account":"bob","Initiator_Account":"alice"},{"From_Account":"bob","To_Account":"alice","Initiator_Account":"alice"}]}`)
	s.post(t, "Sns.CallbackPrevFriendAdd", `{"CallbackCommand":"Sns.CallbackPrevFriendAdd","From_Account":"mallory","Requester_Account":"mallory",
	  "FriendItem":[{"To_Account":"carol","AddWording":"<script>document.title='pwned'</script>"},{"To_Account":"dave","AddWording":"cheap loan"}],"EventTime":1700000000000}`)
	admin := "http://" + s.admin
	eventually(t, "the dead letter", func() bool {
		var dl struct{ Count int }
		getJSON(t, admin+"/dlq", &dl)
		return dl.Count == 1
	})
	var recorded adminapi.EventList
	eventually(t, "the recording", func() bool {
		getJSON(t, admin+"/events", &recorded)
		return recorded.Recorded == 4
	})
	carol := recorded.Events[1].ID // the <script> wording
	greeted := []uint64{recorded.Events[2].ID, recorded.Events[3].ID}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()

	shots := os.Getenv(screenshotsEnv)
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	open := func(path, ready string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(admin+path), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}

	// The console obeys the admin token: a page sends the browser to sign
	// in, a wrong token is refused, the right one opens the pages.
	signIn := func(token, ready string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`input[name="token"]`), token),
			chromedp.Submit(chromedp.CSS(`input[name="token"]`)), chromedp.WaitVisible(chromedp.CSS(ready))); err != nil {
			t.Fatalf("sign in: %v", err)
		}
	}
	open("/ui/events", `input[name="token"]`)
	signIn("not-the-token", "p.bad")
	signIn(consoleToken, "#rules-loaded")
	open("/", "#rules-loaded")
	if got := text("#rules-loaded"); got != "2" {
		t.Errorf("overview: %q rules loaded", got)
	}
	if got := text("#dead-letters"); got != "1" {
		t.Errorf("overview: %q dead letters", got)
	}
	shot("overview")

	open("/ui/rules", "#rule-deny-loans")
	if got := text("#rule-deny-loans"); !strings.Contains(got, "PASS a loan offer is denied") || !strings.Contains(got, "1") {
		t.Errorf("rules: deny-loans row %q", got)
	}
	if got := text("pre.source"); strings.Contains(got, "browser-test-webhook-secret") || !strings.Contains(got, `secret: "<redacted>"`) {
		t.Errorf("rules: source shows the secret:\n%s", got)
	}
	shot("rules")

	// Events: the page follows new events (its script builds each row
	// from text: a caller's markup stays text), then the Prev event with
	// a <script> wording, opened by clicking.
	open("/ui/events", "#events")
	eventually(t, "the events page to show a new event", func() bool {
		s.post(t, "Sns.CallbackFriendAdd", `{"CallbackCommand":"Sns.CallbackFriendAdd","ClientCmd":"friend_add",
		  "PairList":[{"From_Account":"zed","To_Account":"<i>yan</i>","Initiator_Account":"zed"}]}`)
		return strings.Contains(text("#events"), "zed → <i>yan</i>")
	})
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#events i").length`)); err != nil || n != 0 {
		t.Errorf("a caller's markup became elements: %v %v", n, err)
	}
	shot("events")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a.event-link[href="/ui/events/`+strconv.FormatUint(carol, 10)+`"]`)), chromedp.WaitVisible(chromedp.CSS("#trace"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#event-fields"); !strings.Contains(got, "<script>document.title='pwned'</script>") {
		t.Errorf("the AddWording is not shown as text:\n%s", got)
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || strings.Contains(title, "pwned") {
		t.Errorf("a caller's script ran: title %q %v", title, err)
	}
	if got := text("#trace"); !strings.Contains(got, `AddWording contains "loan"`) || !strings.Contains(got, "false") {
		t.Errorf("trace:\n%s", got)
	}
	shot("event")

	// Try a change: deny-loans also denies scripts; the diff says so.
	open("/ui/try", "#try-form")
	src, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`textarea[name="data0"]`)))
	if err != nil || !strings.Contains(src, `AddWording contains "loan"`) {
		t.Fatalf("try: the textarea holds %q, %v", src, err)
	}
	changed := strings.Replace(src, `AddWording contains "loan"`, `AddWording contains "loan" || AddWording contains "<script>"`, 1)
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`textarea[name="data0"]`), changed),
		chromedp.Click(chromedp.CSS("#run-backtest")), chromedp.WaitVisible(chromedp.CSS("#result"))); err != nil {
		loc, _ := chromedp.Run(browser, chromedp.Location())
		body, _ := chromedp.Run(browser, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("try: %v at %s:\n%s", err, loc, body)
	}
	if got := text("#flips"); !strings.Contains(got, "carol: allow → deny 38001 spam") {
		t.Errorf("try: decision flips %q", got)
	}
	shot("try")

	// Counters: mallory's request to carol and dave counted twice.
	open("/ui/counters", "#counter-requests_by_sender")
	if got := text("#counter-requests_by_sender table"); !strings.Contains(got, "mallory\t2") && !strings.Contains(got, "mallory 2") {
		t.Errorf("counters: %q", got)
	}
	if got := text("#counter-requests_by_sender p.scan"); got != "Examined all 1 keys." {
		t.Errorf("counters: scan %q", got)
	}
	shot("counters")

	// Dead letters: the refused delivery, replayed; the CRM takes it now.
	open("/ui/dlq", "#dead-letters")
	if got := text("#dead-letters"); !strings.Contains(got, "greet") || !strings.Contains(got, "400") {
		t.Errorf("dlq: %q", got)
	}
	shot("dlq")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button.replay")), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#done"); got != "1 replayed." {
		t.Errorf("after replay: %q", got)
	}
	// The event's trace tells the job's story: dead, replayed, done.
	eventually(t, "the replayed job to be done", func() bool {
		for _, id := range greeted {
			var tr adminapi.Trace
			getJSON(t, admin+"/events/"+strconv.FormatUint(id, 10), &tr)
			var steps []string
			for _, u := range tr.Event.Trace {
				steps = append(steps, u.Outcome)
			}
			if strings.Join(steps, ",") == "dead,replayed,done" {
				open("/ui/events/"+strconv.FormatUint(id, 10), "#job-trace")
				if got := text("#job-trace"); !strings.Contains(got, "dead") || !strings.Contains(got, "replayed") || !strings.Contains(got, "400") {
					t.Errorf("the event page's job trace:\n%s", got)
				}
				return true
			}
		}
		return false
	})
}
