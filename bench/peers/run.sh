#!/usr/bin/env bash
# bench/peers/run.sh [OUT_DIR]: the side-by-side run of docs/performance.md
# ("Against its peers"). Builds friendflow and the bare net/http server
# (bench/peers/rawhttp) from this checkout, takes Benthos from BENTHOS_BIN
# or builds it from BENTHOS_SRC, then runs with-friendflow.sh: every target
# pinned to one core, wrk on the other, ROUNDS (default 3) interleaved
# rounds, medians and ratios to the bare server in OUT_DIR/summary.txt.
#
#   BENTHOS_BIN  a built cmd/benthos of redpanda-data/benthos v4.76.0, or
#   BENTHOS_SRC  that tag's source tree, extracted from a snapshot of the
#                repository (git --git-dir=REPO archive v4.76.0 | tar -x -C DIR);
#                built once into bench/out/peers/benthos.
#   Neither set: the run has no Benthos row.
#   ROUNDS, DURATION, WARMUP, CONNS, SERVER_CPU, LOAD_CPU: see anchors.sh.
#
# Not part of CI: it needs two quiet cores, wrk and taskset
# (apt-get install wrk util-linux), and takes about
# (targets x ROUNDS x DURATION) + warm-ups: 3 minutes with the defaults.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/bench/peers
bin=$root/bench/out/peers
mkdir -p "$bin"
die() { echo "bench/peers/run.sh: $*" >&2; exit 2; }
for c in wrk taskset curl; do command -v $c >/dev/null || die "$c not found (apt-get install wrk util-linux curl)"; done
(($(nproc) >= 2)) || die "needs two cores: the servers on one, wrk on the other"

# The environment twins of serve's flags must not leak in from the caller.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^FRIENDFLOW_' || true)

(cd "$root" && go build -o "$bin/friendflow" ./cmd/friendflow && go build -o "$bin/rawhttp" ./bench/peers/rawhttp)
export RAW_BIN=$bin/rawhttp
if [[ -z ${BENTHOS_BIN:-} && -n ${BENTHOS_SRC:-} ]]; then
	[[ -f $BENTHOS_SRC/cmd/benthos/main.go ]] || die "BENTHOS_SRC=$BENTHOS_SRC has no cmd/benthos"
	[[ -x $bin/benthos ]] || (cd "$BENTHOS_SRC" && go build -o "$bin/benthos" ./cmd/benthos)
	export BENTHOS_BIN=$bin/benthos
fi
[[ -n ${BENTHOS_BIN:-} ]] || echo "bench/peers/run.sh: neither BENTHOS_BIN nor BENTHOS_SRC set: no Benthos row" >&2
exec "$here/with-friendflow.sh" "$bin/friendflow" "${1:-$bin/out-$(date -u +%Y%m%dT%H%M%SZ)}"
