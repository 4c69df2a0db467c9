package rules

import (
	"slices"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"go.yaml.in/yaml/v3"

	"github.com/friendflow/friendflow/actions"
)

// adminField is the event field naming the admin account whose REST call
// caused the event (Sns.CallbackFriendAdd's Admin_Account).
const adminField = "Admin_Account"

// lintCallbackLoop warns (CodeCallbackLoop) when the action of spec runs
// on a command its own request calls back with and the rule's when does
// not exclude admin-caused events. im.friend_add skips the events of
// friendflow's own admin account anyway; the warning is for readers of the
// rule, and for an admin account the configuration names differently from
// the one IM reports.
func (p *fileParser) lintCallbackLoop(spec actions.Spec, r *rule, at *yaml.Node, what string) {
	var cmd string
	for _, c := range spec.CallsBack {
		if slices.Contains(r.on, c) {
			cmd = c
			break
		}
	}
	if cmd == "" || excludesAdmin(r.whenSrc) {
		return
	}
	p.pending = append(p.pending, Problem{File: p.path, Line: at.Line, Col: at.Column, Code: CodeCallbackLoop,
		Msg: what + ": its own request calls back with " + cmd + ", which this rule is on: add a when that excludes " +
			"the adds an admin made, such as `" + adminField + " == \"\"` (friendflow skips its own admin's events; " +
			"this also keeps other admins' adds from looping)"})
}

// excludesAdmin reports a when one of whose top-level conjuncts compares
// Admin_Account (==, !=, in, not in): a condition on who caused the event
// that every match must pass. A when that does not parse reports its own
// error.
func excludesAdmin(src string) bool {
	if src == "" {
		return false
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(conjuncts(tree.Node), comparesAdmin)
}

// comparesAdmin reports n = Admin_Account compared with something, or its
// negation.
func comparesAdmin(n ast.Node) bool {
	if u, ok := n.(*ast.UnaryNode); ok && (u.Operator == "not" || u.Operator == "!") {
		n = u.Node
	}
	b, ok := n.(*ast.BinaryNode)
	if !ok || !slices.Contains([]string{"==", "!=", "in", "not in"}, b.Operator) {
		return false
	}
	return isIdent(b.Left, adminField) || isIdent(b.Right, adminField)
}

func isIdent(n ast.Node, name string) bool {
	id, ok := n.(*ast.IdentifierNode)
	return ok && id.Value == name
}
