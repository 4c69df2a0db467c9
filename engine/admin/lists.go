package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/friendflow/friendflow/engine/state"
	"github.com/friendflow/friendflow/rules"
)

// ListStore is what the /lists endpoints operate on (state.Lists).
type ListStore interface {
	Summary() []state.Summary
	Has(ctx context.Context, name, member string) (bool, error)
	Page(ctx context.Context, name string, cursor uint64, limit int) ([]string, uint64, error)
	Add(ctx context.Context, name string, members state.Members) (int, error)
	Remove(ctx context.Context, name string, members state.Members) (int, error)
	Replace(ctx context.Context, name string, members state.Members) (int, error)
	LogMembers(name, op string, members []string)
}

// maxJSONMembers bounds the members of one JSON add or remove; more go
// as text, one a line, streamed (friendflow lists import).
const maxJSONMembers = 10_000

// logMembersUpTo is the largest change whose accounts are logged one by
// one; a larger one (an import) logs its count.
const logMembersUpTo = 100

// importIdle is how long an import may go without a byte of its body
// before it is cut: the listener's read timeout is for whole requests,
// and a million members take longer than that to stream.
const importIdle = 30 * time.Second

// MountLists serves GET /lists, GET /lists/{name} (paged, or ?contains=M),
// POST /lists/{name}/add, POST /lists/{name}/remove and PUT
// /lists/{name} (replace). A write names a list the rules declare.
func MountLists(a *Server, store ListStore, rs RuleSource) {
	a.Handle("GET /lists", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, listsView(store, rs.Current()))
	}))
	a.Handle("GET /lists/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		q := r.URL.Query()
		if q.Has("contains") {
			m := q.Get("contains")
			in, err := store.Has(r.Context(), name, m)
			if err != nil {
				writeError(w, statusOf(err), err.Error())
				return
			}
			writeJSON(w, http.StatusOK, ListContains{List: name, Member: m, In: in})
			return
		}
		page, err := listPage(r.Context(), store, name, q.Get("cursor"), q.Get("limit"))
		if err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, page)
	}))
	a.Handle("POST /lists/{name}/add", listWrite(store, rs, "add", store.Add))
	a.Handle("POST /lists/{name}/remove", listWrite(store, rs, "remove", store.Remove))
	a.Handle("PUT /lists/{name}", listWrite(store, rs, "replace", store.Replace))
}

// errBadRequest marks an error of the request, answered 400.
var errBadRequest = errors.New("bad request")

func statusOf(err error) int {
	if errors.Is(err, errBadRequest) {
		return http.StatusBadRequest
	}
	if errors.Is(err, state.ErrNotSynced) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func listsView(store ListStore, set *rules.Set) ListsView {
	var decls []rules.ListDecl
	if set != nil {
		decls = set.Lists()
	}
	held := store.Summary()
	out := ListsView{Lists: []ListInfo{}}
	for _, d := range decls {
		li := ListInfo{Name: d.Name, Description: d.Description, File: d.File, Declared: true}
		if i := slices.IndexFunc(held, func(s state.Summary) bool { return s.Name == d.Name }); i >= 0 {
			li.Members, li.Importing = held[i].Members, held[i].Importing
		}
		out.Lists = append(out.Lists, li)
	}
	for _, s := range held {
		if !slices.ContainsFunc(decls, func(d rules.ListDecl) bool { return d.Name == s.Name }) {
			out.Lists = append(out.Lists, ListInfo{Name: s.Name, Members: s.Members, Importing: s.Importing})
		}
	}
	return out
}

func listPage(ctx context.Context, store ListStore, name, cursor, limit string) (ListPage, error) {
	var c uint64
	var n int
	var err error
	if cursor != "" {
		if c, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return ListPage{}, fmt.Errorf("%w: cursor %q: not one this API made", errBadRequest, cursor)
		}
	}
	if limit != "" {
		if n, err = strconv.Atoi(limit); err != nil || n < 1 {
			return ListPage{}, fmt.Errorf("%w: limit %q: want a positive number", errBadRequest, limit)
		}
	}
	if err := state.CheckName(name); err != nil {
		return ListPage{}, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	members, next, err := store.Page(ctx, name, c, n)
	if err != nil {
		return ListPage{}, err
	}
	p := ListPage{List: name, Members: members}
	if p.Members == nil {
		p.Members = []string{}
	}
	if next != 0 {
		p.NextCursor = strconv.FormatUint(next, 10)
	}
	return p, nil
}

// listWrite serves one write. The body is JSON ({"members": [...]}, at
// most maxJSONMembers) or, with any other Content-Type but the ones the
// guard refuses (text/plain, forms), one member a line
// (application/octet-stream), streamed to the store as it arrives: an
// import of any size holds a line at a time.
func listWrite(store ListStore, rs RuleSource, op string, do func(context.Context, string, state.Members) (int, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := declared(rs.Current(), name); err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		members, small, err := requestMembers(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		n, err := do(r.Context(), name, members)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %s: %v (%d members written before it)", op, name, err, n))
			return
		}
		if small != nil {
			store.LogMembers(name, op, small)
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(importIdle))
		total := -1
		held := store.Summary()
		if i := slices.IndexFunc(held, func(s state.Summary) bool { return s.Name == name }); i >= 0 {
			total = held[i].Members
		}
		writeJSON(w, http.StatusOK, ListChanged{List: name, Op: op, Members: n, Total: total})
	})
}

// listsOf is the lists the serving rules read (nil: none serve).
func listsOf(rs RuleSource) rules.Lists {
	if rs == nil {
		return nil
	}
	if set := rs.Current(); set != nil {
		return set.ListSource()
	}
	return nil
}

// declared is nil when the serving rules declare the list.
func declared(set *rules.Set, name string) error {
	if set == nil {
		return errors.New("no rules loaded: a list is written only once the rules that declare it are")
	}
	var names []string
	for _, d := range set.Lists() {
		if d.Name == name {
			return nil
		}
		names = append(names, d.Name)
	}
	return fmt.Errorf("unknown list %q: the rules declare %v; declare it under lists: in a rule file first", name, names)
}

// requestMembers reads a write's members: small is the members of a JSON
// body, kept to be logged (nil for a text body, or a large one).
func requestMembers(w http.ResponseWriter, r *http.Request) (members state.Members, small []string, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var body ListMembers
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONMembers*(state.MaxMemberBytes+8)))
		if err := dec.Decode(&body); err != nil {
			return nil, nil, fmt.Errorf("body: %w", err)
		}
		if len(body.Members) > maxJSONMembers {
			return nil, nil, fmt.Errorf("%d members in one JSON body; at most %d, or send them as text, one a line", len(body.Members), maxJSONMembers)
		}
		if len(body.Members) <= logMembersUpTo {
			small = body.Members
		}
		return state.MembersOf(body.Members), small, nil
	}
	rc := http.NewResponseController(w)
	return state.LinesOf(&idleReader{r: r.Body, rc: rc}), nil, nil
}

// idleReader pushes the connection's read deadline on with every read, so
// that a long import is cut only when it stalls.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (ir *idleReader) Read(p []byte) (int, error) {
	_ = ir.rc.SetReadDeadline(time.Now().Add(importIdle))
	return ir.r.Read(p)
}
