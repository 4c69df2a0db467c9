package rules

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// envFn is the name of the function that reads the process environment.
const envFn = "env"

// envPrefix starts the environment twin of every friendflow flag, the
// secret ones (--im-secret-key ⇔ FRIENDFLOW_IM_SECRET_KEY, the callback
// and admin tokens) among them: a rule must never read them, since what
// it renders is shown by explain, logged, and sent to webhooks.
const envPrefix = "FRIENDFLOW_"

// envDenied reports whether rules may not read the variable name.
// Case-insensitively: what a rule cannot name it cannot reach by case.
func envDenied(name string) bool {
	return len(name) >= len(envPrefix) && strings.EqualFold(name[:len(envPrefix)], envPrefix)
}

// errEnvDenied is the message for a denied name; it never holds a value.
func errEnvDenied(name string) error {
	return fmt.Errorf("env(%q): rules cannot read %s* variables (friendflow's own configuration and secrets)", name, envPrefix)
}

// readEnv is env() at run time, for names only known then.
func readEnv(getenv func(string) string) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		name, _ := params[0].(string)
		if envDenied(name) {
			return nil, errEnvDenied(name)
		}
		return getenv(name), nil
	}
}

// checkEnvNames makes env() of a denied constant name a compile error, at
// the name's position in the expression.
func checkEnvNames(tree *parser.Tree) error {
	var v envNames
	ast.Walk(&tree.Node, &v)
	if v.bad == nil {
		return nil
	}
	fe := &file.Error{Location: v.bad.Location(), Message: errEnvDenied(v.bad.Value).Error()}
	return fe.Bind(tree.Source)
}

type envNames struct{ bad *ast.StringNode }

func (v *envNames) Visit(node *ast.Node) {
	c := callTo(*node, envFn)
	if c == nil || v.bad != nil || len(c.Arguments) != 1 {
		return
	}
	if s, ok := c.Arguments[0].(*ast.StringNode); ok && envDenied(s.Value) {
		v.bad = s
	}
}
