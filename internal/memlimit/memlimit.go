// Package memlimit derives the Go runtime's soft memory limit (GOMEMLIMIT)
// from the memory limit of the container the process runs in, so that the
// garbage collector works harder as the heap nears the limit instead of the
// kernel killing the process at it.
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction is the share of the container's limit given to the Go runtime.
// GOMEMLIMIT bounds only the memory the runtime manages (heap, stacks, its
// own structures); the container is also charged for the executable's
// pages in memory (about 25 MiB of friendflow's), anything else the
// process maps, and the page cache of the files it writes (the embedded
// queue's store), which the kernel reclaims before it kills. Measured with
// bench/dlqmem.sh (the worst operation: replaying 25 000 of 100 000 dead
// letters), the resident peak runs 30-37 MiB above the soft limit, and the
// manifests keep 25% of the container's limit as headroom over that peak.
// Half the limit meets both: 64 MiB of a 128 MiB container peaked at
// 94-101 MiB, under the 102 MiB that 25% headroom allows; with no limit the
// same replay reached 140-160 MiB, past the container's limit itself.
const Fraction = 0.5

// Minimum is the smallest limit Derive sets: below it, a garbage
// collector held at the limit would run all the time for a heap the
// service needs anyway (its idle heap is around 20 MiB), so a smaller
// container limit is left to the kernel.
const Minimum = 32 << 20

// Cgroup memory limit files, relative to the cgroup file system's mount
// point: the unified hierarchy (cgroup v2) first, then the memory
// controller's own (v1). In a container the mount point is the
// container's own cgroup (see cgroups(7), "cgroup namespaces" and
// https://docs.kernel.org/admin-guide/cgroup-v2.html#memory-interface-files).
var cgroupFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// v1Unlimited is the least value cgroup v1 reports for "no limit": the
// largest page-aligned int64 (9223372036854771712 with 4 KiB pages), or
// any value this close to it.
const v1Unlimited = math.MaxInt64 - 1<<30

// ContainerLimit reads the memory limit of the cgroup mounted at root
// (/sys/fs/cgroup): the limit in bytes and the file it came from, or 0 when
// no file there sets one ("max", v1's near-MaxInt64, or no such file).
func ContainerLimit(root string) (limit int64, file string, err error) {
	for _, name := range cgroupFiles {
		p := filepath.Join(root, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, p, fmt.Errorf("memlimit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, p, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, p, fmt.Errorf("memlimit: %s holds %q, not a number of bytes", p, s)
		}
		if n >= v1Unlimited {
			return 0, p, nil
		}
		return n, p, nil
	}
	return 0, "", nil
}

// Choice is what Derive decided.
type Choice struct {
	Limit     int64  // the soft limit now in force; 0 when Derive set none
	Container int64  // the container's limit; 0 when none was found
	From      string // "GOMEMLIMIT", the cgroup file the limit was derived from, or ""
	Why       string // why no limit was set, when none was
}

// Derive sets the runtime's soft memory limit to Fraction of the
// container's limit read under root, unless the GOMEMLIMIT environment
// variable (getenv) is set: the runtime has applied that one itself.
func Derive(root string, getenv func(string) string) (Choice, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return Choice{Limit: debug.SetMemoryLimit(-1), From: "GOMEMLIMIT"}, nil
	}
	limit, file, err := ContainerLimit(root)
	if err != nil {
		return Choice{From: file}, err
	}
	c := Choice{Container: limit, From: file}
	switch {
	case limit == 0:
		c.Why = "no container memory limit found under " + root
	case int64(float64(limit)*Fraction) < Minimum:
		c.Why = fmt.Sprintf("the container limit (%d MiB) is too small to leave the garbage collector room", limit>>20)
	default:
		c.Limit = int64(float64(limit) * Fraction)
		debug.SetMemoryLimit(c.Limit)
	}
	return c, nil
}
