package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/friendflow/friendflow/actions"
)

// Resolver renders, when a job runs, the templates that call profile():
// Match stored them unrendered in the job's parameters, with the accounts
// they name (actions.ProfilesParam). It reads the profiles from its
// source (batched and cached there), renders each template against the
// job's stored event, as Match would have, and returns the parameters
// without the marker, ready for the kind's Spec.Check. The templates come
// from the job itself, so a reload since the match changes nothing. It is
// safe for concurrent use.
type Resolver struct {
	src actions.ProfileSource
	lim limits

	mu        sync.Mutex // guards compiler and templates
	compiler  *exprCompiler
	templates map[string]*template // by source; cleared when full
	scratch   sync.Pool
}

// maxResolverTemplates bounds the Resolver's compiled templates: their
// sources come from rule files, so a few dozen are usual; jobs of many
// reloads ago may bring others.
const maxResolverTemplates = 1024

// NewResolver returns a Resolver reading profiles from src. getenv backs
// env() in the templates, as Options.Getenv does (nil: os.Getenv).
func NewResolver(src actions.ProfileSource, getenv func(string) string) *Resolver {
	if getenv == nil {
		getenv = os.Getenv
	}
	lim := (&Options{}).limits()
	l := newLoader(nil, getenv, lim)
	r := &Resolver{src: src, lim: lim, compiler: l.compiler, templates: make(map[string]*template)}
	r.scratch.New = func() any {
		sc := &scratch{budget: evalBudget{maxSteps: lim.evalSteps, maxBytes: lim.evalBytes}}
		sc.vm.MemoryBudget = lim.evalMemory
		return sc
	}
	return r
}

// NeedsProfiles reports whether a job's parameters hold profile()
// templates to resolve.
func NeedsProfiles(params map[string]any) bool {
	_, ok := params[actions.ProfilesParam]
	return ok
}

// profileWants reads actions.ProfilesParam.
func profileWants(params map[string]any) (accounts, custom []string) {
	m, _ := params[actions.ProfilesParam].(map[string]any)
	return stringList(m["accounts"]), stringList(m["custom"])
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Prefetch asks the source for the profiles a job will want, without
// waiting: the queue calls it for every due job of a message before
// running them, so that their accounts share requests. It returns 0 when
// they are all cached, else about how long until they will be.
func (r *Resolver) Prefetch(params map[string]any) time.Duration {
	if accounts, custom := profileWants(params); len(accounts) > 0 {
		return r.src.Prefetch(accounts, custom)
	}
	return 0
}

// Resolve returns params with their profile() templates rendered for the
// event, whose fields the templates carry (event is not read). A failure to read profiles is the source's error, classified
// (transient: the job is retried); a template that cannot be rendered is
// permanent, as a job's invalid parameters are.
func (r *Resolver) Resolve(ctx context.Context, params map[string]any, event json.RawMessage) (map[string]any, error) {
	accounts, custom := profileWants(params)
	profs, err := r.src.Profiles(ctx, accounts, custom)
	if err != nil {
		return nil, fmt.Errorf("reading IM profiles: %w", err)
	}
	sc := r.scratch.Get().(*scratch)
	defer r.scratch.Put(sc)
	sc.budget.begin(nil, &r.lim)
	sc.budget.rule()
	var fetchErr error
	// The environment holds the fields the templates read, which they
	// carry (deferredEnv); the resolver's templates never read the event
	// itself (no fast path).
	if sc.env == nil {
		sc.env = make(map[string]any, 8)
	}
	clear(sc.env)
	x := &evalCtx{ev: &sc.noEvent, vm: &sc.vm, sc: sc, env: withBudget(sc.env, &sc.budget)}
	rs := resolving{x: x}
	x.profiles = func(account string) map[string]any {
		p, ok := profs[account]
		if !ok {
			// A branch Match did not take (it saw empty profiles) names
			// an account it did not record: read it now.
			more, err := r.src.Profiles(ctx, []string{account}, custom)
			if err != nil {
				fetchErr = err
			}
			p = more[account]
		}
		return p.Value()
	}
	out, err := r.resolveMap(params, &rs)
	if fetchErr != nil {
		return nil, fmt.Errorf("reading IM profiles: %w", fetchErr)
	}
	if err != nil {
		return nil, actions.Permanent(err)
	}
	delete(out, actions.ProfilesParam)
	return out, nil
}

// resolving is one job's resolution.
type resolving struct {
	x *evalCtx
}

// addEnv puts the event fields a deferred template carries into the
// environment (numbers come back from the queue as float64).
func (rs *resolving) addEnv(deferred map[string]any) {
	for name, val := range deferred {
		f, known := eventFieldOf(name)
		if !known {
			continue // deferredTemplate, deferredURL
		}
		if f.kind == fkInt {
			switch n := val.(type) {
			case float64:
				val = int(n)
			case int64:
				val = int(n)
			}
		}
		rs.x.env[name] = val
	}
}

func (r *Resolver) resolveMap(m map[string]any, rs *resolving) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		rv, err := r.resolveValue(v, rs)
		if err != nil {
			return nil, &paramRenderError{path: k, err: err}
		}
		out[k] = rv
	}
	return out, nil
}

func (r *Resolver) resolveValue(v any, rs *resolving) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if src, ok := t[deferredTemplate].(string); ok {
			url, _ := t[deferredURL].(bool)
			tmpl, err := r.template(src, url)
			if err != nil {
				return nil, err
			}
			rs.addEnv(t)
			return tmpl.render(rs.x)
		}
		return r.resolveMap(t, rs)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			re, err := r.resolveValue(e, rs)
			if err != nil {
				return nil, err
			}
			out[i] = re
		}
		return out, nil
	}
	return v, nil
}

// template compiles a deferred template's source, once.
func (r *Resolver) template(src string, url bool) (*template, error) {
	key := src
	if url {
		key = "url\x00" + src
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.templates[key]; t != nil {
		return t, nil
	}
	t, err := compileTemplate(r.compiler, src)
	if err != nil {
		return nil, err
	}
	if url {
		t = urlTemplate(t)
	}
	if len(r.templates) >= maxResolverTemplates {
		clear(r.templates)
	}
	r.templates[key] = t
	return t, nil
}

// compileTemplate compiles a template string as the loader does, without
// positions for its errors (it compiled at load already).
func compileTemplate(c *exprCompiler, s string) (*template, error) {
	spans, tail, err := scanTemplate(s)
	if err != nil {
		return nil, err
	}
	if spans == nil {
		return nil, errors.New("not a template")
	}
	t := newTemplate(s, spans, tail)
	for _, sp := range spans {
		if err := t.addPart(c, sp, s); err != nil {
			return nil, fmt.Errorf("${ %s }: %w", s[sp.start:sp.end], err)
		}
	}
	t.finish(tail)
	// Rendered against an environment of the fields the template reads,
	// never against an event: no part takes the fast path.
	for i := range t.parts {
		t.parts[i].fast = fexpr{}
	}
	return t, nil
}
