package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/friendflow/friendflow/rules"
)

// fmtCommand rewrites rule files in the canonical layout (rules.Format),
// or with --check only names the files that are not, like gofmt -l.
func fmtCommand(fs *flag.FlagSet) runFunc {
	check := fs.Bool("check", false, "change nothing: name the files not in the canonical layout and exit 1 if there are any")
	return func(_ context.Context, inv *invocation) error {
		paths, err := rulePaths(inv.args)
		if err != nil {
			return err
		}
		files, err := ruleFilesOf(paths)
		if err != nil {
			return err
		}
		var changed, failed int
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			out, err := rules.Format(src)
			if err != nil {
				fmt.Fprintf(inv.stderr, "%s: %v\n", f, err)
				failed++
				continue
			}
			if bytes.Equal(out, src) {
				continue
			}
			changed++
			fmt.Fprintln(inv.stdout, f)
			if !*check {
				if err := writeFileKeepMode(f, out); err != nil {
					return err
				}
			}
		}
		if failed > 0 || *check && changed > 0 {
			return &exitError{1}
		}
		return nil
	}
}

// ruleFilesOf lists the rule files of PATHs as Load reads them: a file as
// it is, a directory's *.yaml and *.yml, sorted and each once.
func ruleFilesOf(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, usagef("%v", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			out = append(out, m...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// writeFileKeepMode replaces path's content through a temporary file in
// its directory, so that a crash leaves the old file or the new one, never
// half of one; the file keeps its mode.
func writeFileKeepMode(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fmt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
