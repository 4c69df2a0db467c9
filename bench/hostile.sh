#!/usr/bin/env bash
# Issue 22's hostile callers against a real `friendflow serve` (not the race
# build): 1 100 keep-alive GET /nope sockets on the callback port, 20 000
# keep-alive /healthz sockets on the admin port, and the 10 KB sparse tar
# bomb on POST /backtest. Prints, for each, how long a signed callback
# (or the bomb's refusal) took and the server's peak memory (VmHWM).
# Needs Go; raises the descriptor limit (root for more than the hard limit).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/friendflow" ./cmd/friendflow
go build -o "$work/hostile" ./bench/hostile
# One process holds at most its descriptor limit: the 20 000 sockets come
# from two.
ulimit -n "$(ulimit -Hn)"
token=hostile-token-0123456789
run() {
	rm -rf "$work/data"
	"$work/friendflow" serve --sdkappid 1400000000 --callback-token "$token" --listen 127.0.0.1:18080 \
		--admin-listen 127.0.0.1:19090 --rules examples/rules --data "$work/data" --log-level error 2>"$work/log" &
	pid=$!
	for _ in $(seq 100); do curl -fs http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
	fpid=
	if [ -n "${FLOOD:-}" ]; then
		# shellcheck disable=SC2086 # FLOOD is a list of flags
		"$work/hostile" $FLOOD -flood-only -hold 12s &
		fpid=$!
		sleep 1
	fi
	"$work/hostile" -pid "$pid" -listen 127.0.0.1:18080 -token "$token" "$@"
	[ -z "$fpid" ] || wait "$fpid"
	kill "$pid"; wait "$pid" || true; pid=
}
echo "== 1 100 keep-alive GET /nope on the callback port"
run -target 127.0.0.1:18080 -path /nope -sockets 1100
echo "== 20 000 keep-alive GET /healthz on the admin port"
FLOOD="-target 127.0.0.1:19090 -path /healthz -sockets 10000" run -target 127.0.0.1:19090 -path /healthz -sockets 10000
echo "== POST /backtest: 10 KB PAX sparse tar claiming 1 GiB"
run -tar 127.0.0.1:19090
