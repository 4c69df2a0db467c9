package admin

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/friendflow/friendflow/actions"
	"github.com/friendflow/friendflow/actions/im"
	"github.com/friendflow/friendflow/engine/imcallback"
	"github.com/friendflow/friendflow/engine/queue"
	"github.com/friendflow/friendflow/engine/record"
	"github.com/friendflow/friendflow/rules"
)

//go:embed console/*.html console/static
var consoleFS embed.FS

// ConsoleCookie holds the admin token for the console's pages once its
// login form accepted it: HttpOnly (no script reads it), SameSite=Strict
// (no other site's page sends it). The pages accept it as they accept
// Authorization: Bearer.
const ConsoleCookie = "friendflow_admin_token"

// consoleCSP allows nothing but this origin's stylesheet, and no script at
// all: the console works without JavaScript, so an injected script tag,
// were escaping ever to fail, would not run.
const consoleCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Console is the operator console: server-rendered pages on the admin
// listener. Set the fields, then Mount.
type Console struct {
	Version  string
	Rules    RuleSource
	Events   *record.Log // nil: recording is off
	DLQ      DeadLetterStore
	Registry *actions.Registry // validates "Try a change"; redacts dead letters
	Metrics  prometheus.Gatherer
	Queue    func(context.Context) (queue.Stats, error) // nil: not shown
	IMRate   func() []im.RateState                      // nil: no IM client
	Lists    ListStore                                  // nil: the Lists page says there are none
	Counters CounterStore                               // nil: the Counters page says they are not available
	// CheckToken, when set, says whether a token is the admin token: the
	// pages then need the console cookie (set by /ui/login) or
	// Authorization: Bearer. Nil: the pages are open, as the rest of the
	// admin API is without a token.
	CheckToken func(token string) bool
	Logger     *slog.Logger

	throttle *authThrottle // the Server's, set by Mount

	pages map[string]*template.Template
}

// Mount serves the console on a: / (overview), /ui/rules, /ui/events,
// /ui/events/{id}, /ui/try, /ui/dlq, /ui/lists, /ui/counters, /ui/login and
// /ui/static/.
func (c *Console) Mount(a *Server) error {
	c.throttle = a.auth
	if err := c.parse(); err != nil {
		return err
	}
	static, err := fs.Sub(consoleFS, "console/static")
	if err != nil {
		return err
	}
	a.Handle("GET /ui/static/", secure(http.StripPrefix("/ui/static/", http.FileServerFS(static))))
	a.Handle("GET /ui/login", secure(http.HandlerFunc(c.loginPage)))
	a.Handle("POST /ui/login", secure(http.HandlerFunc(c.login)))
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /{$}":                   c.overview,
		"GET /ui/rules":              c.rulesPage,
		"GET /ui/events":             c.eventsPage,
		"GET /ui/events/{id}":        c.eventPage,
		"GET /ui/events/live":        c.eventsLive,
		"GET /ui/try":                c.tryPage,
		"POST /ui/try":               c.try,
		"GET /ui/dlq":                c.dlqPage,
		"POST /ui/dlq/{op}":          c.dlqOp,
		"GET /ui/lists":              c.listsPage,
		"GET /ui/lists/{name}":       c.listPage,
		"POST /ui/lists/{name}/{op}": c.listOp,
		"GET /ui/counters":           c.countersPage,
	} {
		a.Handle(pattern, secure(c.auth(h)))
	}
	return nil
}

func (c *Console) parse() error {
	funcs := template.FuncMap{
		// json leaves escaping to html/template, which knows the context.
		"json": func(v any) string {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				return fmt.Sprint(v)
			}
			return strings.TrimSuffix(b.String(), "\n")
		},
		"short": func(s string) string {
			if len(s) > 12 {
				return s[:12]
			}
			return s
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05.000Z")
		},
		"join": strings.Join,
	}
	c.pages = map[string]*template.Template{}
	for _, p := range []string{"overview", "rules", "events", "event", "try", "dlq", "login", "lists", "list", "counters"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(consoleFS, "console/layout.html", "console/"+p+".html")
		if err != nil {
			return fmt.Errorf("console page %s: %w", p, err)
		}
		c.pages[p] = t
	}
	return nil
}

// secure sets the headers every console response carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", consoleCSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		// Not no-referrer: with it browsers send Origin: null on this
		// origin's own form posts.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// auth requires the admin token when one is configured. The Guard in
// front of every console page has refused a cross-origin write already.
func (c *Console) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.CheckToken != nil {
			ok, replied := c.tokenOK(w, r, requestToken(r), "console")
			if replied {
				return
			}
			if ok {
				h(w, r)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// tokenOK checks tok, a token r presented (empty: none), within the
// client's budget of failed authentications: a client over it gets 429,
// and replied is true.
func (c *Console) tokenOK(w http.ResponseWriter, r *http.Request, tok, where string) (ok, replied bool) {
	if c.throttle != nil && c.throttle.limited(w, r) {
		return false, true
	}
	if c.CheckToken(tok) {
		return true, false
	}
	if tok != "" && c.throttle != nil {
		c.throttle.failed(r, where)
	}
	return false, false
}

// requestToken is the admin token a request carries: Authorization:
// Bearer, else the console cookie.
func requestToken(r *http.Request) string {
	if tok, ok := bearerToken(r); ok {
		return tok
	}
	if ck, err := r.Cookie(ConsoleCookie); err == nil {
		return ck.Value
	}
	return ""
}

func (c *Console) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// page is what every page's layout reads.
type page struct {
	Title   string
	Nav     string
	Version string
	Data    any
}

func (c *Console) render(w http.ResponseWriter, status int, name, title string, data any) {
	var b bytes.Buffer
	if err := c.pages[name].Execute(&b, page{Title: title, Nav: name, Version: c.Version, Data: data}); err != nil {
		c.logger().Error("console page failed", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.CheckToken == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", "Sign in", map[string]any{"Failed": r.URL.Query().Has("failed")})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.CheckToken == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	ok, replied := c.tokenOK(w, r, tok, "console sign-in")
	if replied {
		return
	}
	if !ok {
		if tok == "" && c.throttle != nil {
			c.throttle.failed(r, "console sign-in") // an empty guess is a guess
		}
		http.Redirect(w, r, "/ui/login?failed", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: ConsoleCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// overviewData is the Overview page.
type overviewData struct {
	Rules        int
	Hash         string
	Status       any
	LastError    string
	PerSecond    string
	Recorded     int
	Capacity     int
	Failed       float64
	Rejected     float64
	Queue        *queue.Stats
	QueueError   string
	IMBudgets    []im.RateState
	IMConfigured bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d := overviewData{Recorded: c.Events.Len(r.Context()), Capacity: c.Events.Size()}
	st := c.Rules.Status()
	d.Status, d.LastError = st, st.LastError
	if set := c.Rules.Current(); set != nil {
		d.Rules, d.Hash = set.Len(), set.Hash()
	}
	if c.Events != nil {
		d.PerSecond = strconv.FormatFloat(float64(c.Events.Callbacks(r.Context(), time.Now().Add(-time.Minute)))/60, 'f', 2, 64)
	}
	if c.Metrics != nil {
		d.Failed = sumMetric(c.Metrics, "friendflow_callbacks_total", "result", imcallback.ResultFailed)
		d.Rejected = sumMetric(c.Metrics, "friendflow_callbacks_total", "result", imcallback.ResultRejected)
	}
	if c.Queue != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if s, err := c.Queue(ctx); err != nil {
			d.QueueError = err.Error()
		} else {
			d.Queue = &s
		}
	}
	if c.IMRate != nil {
		d.IMConfigured = true
		d.IMBudgets = c.IMRate()
	}
	c.render(w, http.StatusOK, "overview", "Overview", d)
}

// sumMetric adds up the samples of a counter family whose label has value.
func sumMetric(g prometheus.Gatherer, name, label, value string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// readSource reads a loaded rule file for display; the console never
// writes one.
func readSource(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have grown since it loaded: read no more than a rule
	// file may hold.
	b, err := io.ReadAll(io.LimitReader(f, rules.DefaultMaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > rules.DefaultMaxFileBytes {
		return nil, fmt.Errorf("%s is larger than a rule file may be now; not shown", path)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
}
