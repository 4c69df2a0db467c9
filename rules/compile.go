package rules

import (
	"errors"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/vm"
)

// exprCompiler compiles the expressions of one Load. expr.Compile builds a
// new configuration (the builtins table, the environment's types) for
// every expression, which was a third of the load time of a large rule
// set; this keeps one configuration per expected result kind and runs the
// same steps as expr.Compile. A configuration caches types as it goes, so
// an exprCompiler is for one goroutine: Load's.
type exprCompiler struct {
	opts    []expr.Option
	configs map[string]*conf.Config // by the extra options' key
	lists   []listRef               // the lists the last expression compiled looks up
	// counters are the declared counters count() may name; nil while a
	// counter's key compiles, which may not count.
	counters map[string]*counterSpec
	counted  bool // the last expression compiled calls count()
}

func newExprCompiler(opts []expr.Option) *exprCompiler {
	return &exprCompiler{opts: opts, configs: make(map[string]*conf.Config)}
}

// compile compiles src; key names the extra options, which must always be
// the same for one key ("" for none). inspect, when not nil, sees the
// checked tree before the optimizer rewrites it (an in list becomes a map
// constant): the fast path and the index read the expression there, from
// the one parse the program comes from.
func (c *exprCompiler) compile(src, key string, inspect func(ast.Node), extra ...expr.Option) (*vm.Program, error) {
	cfg := c.configs[key]
	if cfg == nil {
		cfg = conf.CreateNew()
		for _, op := range c.opts {
			op(cfg)
		}
		for _, op := range extra {
			op(cfg)
		}
		for name := range cfg.Disabled {
			delete(cfg.Builtins, name)
		}
		cfg.Check()
		c.configs[key] = cfg
	}
	c.lists = nil
	tree, err := checker.ParseCheck(src, cfg)
	if err != nil {
		return nil, countErr(err)
	}
	if err := checkEnvNames(tree); err != nil {
		return nil, err
	}
	if err := checkProfile(tree, key); err != nil {
		return nil, err
	}
	c.lists = listRefs(tree.Node)
	if err := checkCountNames(tree, c.counters, &c.counted); err != nil {
		return nil, err
	}
	if inspect != nil {
		inspect(tree.Node)
	}
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, cfg)
}
