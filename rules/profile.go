package rules

import (
	"fmt"
	"reflect"
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
// for a template to render when the job runs: {deferredTemplate: source,
// and the event fields it reads by name}, with deferredURL: true when it
// is a URL parameter's (escaped as such). The fields travel with it so
// that the job's event need not be decoded to render it.
const (
	deferredTemplate = "$profile_template"
	deferredURL      = "$url"
)

// profileStub types profile() for the checker; the evaluations put the
// real function in the environment (setProfileFn). Its type is the one
// expr calls without reflection; profileUse checks the argument.
func profileStub(...any) any { return nil }

// emptyProfile is what profile() gives an account without a profile. One
// value serves all: expressions cannot change a map.
func emptyProfile() map[string]any { return emptyProfileValue }

var emptyProfileValue = actions.Profile{}.Value()

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
		switch {
		case !v.allowed:
			v.fail(c, "profile() may only be used in action templates: it reads IM when the job runs, "+
				"never while the callback waits, so it cannot decide when, once or any other condition")
		case len(c.Arguments) != 1:
			v.fail(c, "profile() takes one account, such as profile(From_Account)")
		case !stringTyped(c.Arguments[0]):
			v.fail(c.Arguments[0], "profile(): the account must be a string")
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

// stringTyped reports whether a checked node may be a string.
func stringTyped(n ast.Node) bool {
	t := n.Type()
	return t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface
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
		env[profileFn] = func(args ...any) any {
			account, _ := args[0].(string)
			return x.profiles(account)
		}
		return
	}
	env[profileFn] = func(args ...any) any {
		account, _ := args[0].(string)
		if !slices.Contains(x.accounts, account) {
			x.accounts = append(x.accounts, account)
		}
		return emptyProfile()
	}
}

// deferred renders a profile() template at match time: the accounts its
// profile() calls name go to x.accounts (read off the event when every
// call names a field or a constant, else by running the calls), and the
// value is the template itself with the event fields it reads, for the
// queue to render when the job runs.
func (t *template) deferred(x *evalCtx) (any, error) {
	if t.acctsVM {
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
	} else {
		for _, a := range t.accts {
			account := a.lit
			if a.field.str != nil {
				account = a.field.str(x.ev)
			}
			if !slices.Contains(x.accounts, account) {
				x.accounts = append(x.accounts, account)
			}
		}
	}
	v := make(map[string]any, len(t.fields)+2)
	v[deferredTemplate] = t.src
	for _, f := range t.fields {
		if f.field.kind == fkInt {
			v[f.name] = f.field.num(x.ev)
		} else {
			v[f.name] = f.field.str(x.ev)
		}
	}
	if t.url {
		v[deferredURL] = true
	}
	return v, nil
}

// namedField is an event field a template reads.
type namedField struct {
	name  string
	field eventField
}

// profileArg is what one profile() call names: an event field's value, or
// a constant.
type profileArg struct {
	field eventField
	lit   string
}

// templateReads walks a checked template part for the event fields it
// reads and the accounts its profile() calls name; vm is true when a
// call's argument is more than a string field or a constant.
type templateReads struct {
	fields []namedField
	args   []profileArg
	vm     bool
}

func (v *templateReads) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if f, ok := eventFieldOf(n.Value); ok && !slices.ContainsFunc(v.fields, func(nf namedField) bool { return nf.name == n.Value }) {
			v.fields = append(v.fields, namedField{n.Value, f})
		}
	case *ast.CallNode:
		if callTo(n, profileFn) == nil || len(n.Arguments) != 1 {
			return
		}
		switch a := n.Arguments[0].(type) {
		case *ast.IdentifierNode:
			if f, ok := eventFieldOf(a.Value); ok && f.kind == fkString {
				v.args = append(v.args, profileArg{field: f})
				return
			}
		case *ast.StringNode:
			v.args = append(v.args, profileArg{lit: a.Value})
			return
		}
		v.vm = true
	}
}

// profilesParam is the value of actions.ProfilesParam for the accounts
// recorded and the action's custom fields.
func profilesParam(accounts, custom []string) map[string]any {
	a := make([]any, len(accounts))
	for i, s := range accounts {
		a[i] = s
	}
	m := map[string]any{"accounts": a}
	if len(custom) > 0 {
		c := make([]any, len(custom))
		for i, s := range custom {
			c[i] = s
		}
		m["custom"] = c
	}
	return m
}
