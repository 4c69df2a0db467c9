package main

import (
	"log/slog"

	"github.com/friendflow/friendflow/internal/memlimit"
)

// cgroupRoot is where the container's memory limit is read from; tests
// point it at a directory of their own.
var cgroupRoot = "/sys/fs/cgroup"

// deriveMemoryLimit sets GOMEMLIMIT from the container's memory limit when
// the environment does not set it, and logs the limit in force once.
func deriveMemoryLimit(log *slog.Logger, getenv func(string) string) {
	c, err := memlimit.Derive(cgroupRoot, getenv)
	switch {
	case err != nil:
		log.Warn("cannot read the container's memory limit: no GOMEMLIMIT derived", "err", err)
	case c.Limit == 0:
		log.Info("no Go memory limit: "+c.Why, "gomemlimit", "none")
	case c.From == "GOMEMLIMIT":
		log.Info("Go memory limit from GOMEMLIMIT", "gomemlimit_bytes", c.Limit)
	default:
		log.Info("Go memory limit derived from the container's", "gomemlimit_bytes", c.Limit,
			"container_limit_bytes", c.Container, "fraction", memlimit.Fraction, "from", c.From)
	}
}
