package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"

	"github.com/friendflow/friendflow/actions"
)

// profile(ACCOUNT) gives an account's IM profile to action templates. It
// is resolved when the job runs, never while the callback waits: at match
// time a template that calls it is stored unrendered (deferredTemplate),
// with the accounts its calls name (actions.ProfilesParam), and the queue
// renders it with the profiles before the action runs (Resolver). Rule
// tests and explain render it at once, with the test's profiles:.
const profileFn = "profile"

// templateKey is the compiler configuration of templates, the one place
// profile() may be used.
const templateKey = "template"

// deferredTemplate is the key of a rendered parameter value that stands
// for a template to render when the job runs: {deferredTemplate: source},
// with deferredURL: true when it is a URL parameter's (escaped as such).
const (
	deferredTemplate = "$profile_template"
	deferredURL      = "$url"
)

// profileStub types profile() for the checker; the evaluations put the
// real function in the environment (setProfileFn).
func profileStub(string) map[string]any { return nil }

// emptyProfile is what profile() gives an account without a profile.
func emptyProfile() map[string]any { return actions.Profile{}.Value() }

// maxCustomKey is the length limit of a custom profile field's key
// (Tag_Profile_Custom_<key>: English letters, at most 8 bytes).
const maxCustomKey = 8

func validCustomKey(k string) bool {
	if k == "" || len(k) > maxCustomKey {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// profileUse walks a checked expression for profile() calls. allowed says
// whether they may appear (templates); err, when not nil, is the first
// misuse: profile() outside a template, an unknown field, a custom field
// not named by a constant key.
type profileUse struct {
	allowed bool
	uses    bool
	custom  []string
	err     *file.Error
	customs []*ast.MemberNode // profile(...).Custom nodes
	keyed   []*ast.MemberNode // those with a .Key after them
}

func (v *profileUse) fail(n ast.Node, format string, args ...any) {
	if v.err == nil {
		v.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}
	}
}

func (v *profileUse) Visit(node *ast.Node) {
	if c := callTo(*node, profileFn); c != nil {
		v.uses = true
		if !v.allowed {
			v.fail(c, "profile() may only be used in action templates: it reads IM when the job runs, "+
				"never while the callback waits, so it cannot decide when, once or any other condition")
		}
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	if callTo(m.Node, profileFn) != nil {
		name, isStr := m.Property.(*ast.StringNode)
		switch {
		case !isStr || !slices.Contains(actions.ProfileFields, name.Value):
			v.fail(m.Property, "profile() has the fields %s", strings.Join(actions.ProfileFields, ", "))
		case name.Value == "Custom":
			v.customs = append(v.customs, m)
		}
		return
	}
	if inner, ok := m.Node.(*ast.MemberNode); ok && slices.Contains(v.customs, inner) {
		key, isStr := m.Property.(*ast.StringNode)
		if !isStr || !validCustomKey(key.Value) {
			v.fail(m.Property, "profile(...).Custom.KEY: KEY must be a constant name of 1 to %d English letters (the custom field Tag_Profile_Custom_KEY)", maxCustomKey)
			return
		}
		v.keyed = append(v.keyed, inner)
		if !slices.Contains(v.custom, key.Value) {
			v.custom = append(v.custom, key.Value)
		}
	}
}

// checkProfile is profileUse over a whole tree, compiled for the
// configuration key: profile() only in templates.
func checkProfile(tree *parser.Tree, key string) error {
	v := profileUse{allowed: key == templateKey}
	ast.Walk(&tree.Node, &v)
	for _, c := range v.customs {
		if !slices.Contains(v.keyed, c) {
			v.fail(c, "name the custom field: profile(...).Custom.KEY (only the custom fields rules name are read)")
		}
	}
	if v.err == nil {
		return nil
	}
	return v.err.Bind(tree.Source)
}

// profileInfo reports whether a checked template part calls profile(), and
// the custom fields it names.
func profileInfo(n ast.Node) (uses bool, custom []string) {
	v := profileUse{allowed: true}
	ast.Walk(&n, &v)
	return v.uses, v.custom
}

// setProfileFn installs profile() in x's environment: with x.profiles
// when set (rule tests, explain, the Resolver), otherwise a recorder of
// the accounts named, giving empty profiles (match time).
func (x *evalCtx) setProfileFn() {
	env := x.envMap()
	if x.profiles != nil {
		env[profileFn] = x.profiles
		return
	}
	env[profileFn] = func(account string) map[string]any {
		if !slices.Contains(x.accounts, account) {
			x.accounts = append(x.accounts, account)
		}
		return emptyProfile()
	}
}

// deferred renders a profile() template at match time: its profile()
// calls run to learn the accounts they name (into x.accounts), and the
// value is the template itself, for the queue to render when the job
// runs.
func (t *template) deferred(x *evalCtx) (any, error) {
	x.setProfileFn()
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil || !p.profile {
			continue
		}
		if _, err := x.run(p.prog); err != nil {
			return nil, fmt.Errorf("${ %s }: %w", p.src, err)
		}
	}
	v := map[string]any{deferredTemplate: t.src}
	if t.url {
		v[deferredURL] = true
	}
	return v, nil
}

// profilesParam is the value of actions.ProfilesParam for the accounts
// recorded and the action's custom fields.
func profilesParam(accounts, custom []string) map[string]any {
	a := make([]any, len(accounts))
	for i, s := range accounts {
		a[i] = s
	}
	c := make([]any, len(custom))
	for i, s := range custom {
		c[i] = s
	}
	return map[string]any{"accounts": a, "custom": c}
}
