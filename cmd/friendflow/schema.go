package main

//go:generate go run . schema --output ../../docs/schema/rules.schema.json

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/friendflow/friendflow/rules"
)

// schemaCommand prints the JSON Schema of rule files, generated from the
// rule-file keys and the action kinds' declarations: editors complete and
// check rule files with it.
func schemaCommand(fs *flag.FlagSet) runFunc {
	output := fs.String("output", "", "write the schema to this file instead of stdout")
	return func(_ context.Context, inv *invocation) error {
		if len(inv.args) > 0 {
			return usagef("unexpected argument %q", inv.args[0])
		}
		b, err := rules.Schema(newRegistry(slog.New(slog.DiscardHandler), nil))
		if err != nil {
			return err
		}
		if *output == "" {
			_, err = inv.stdout.Write(b)
			return err
		}
		if err := os.WriteFile(*output, b, 0o644); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		return nil
	}
}
