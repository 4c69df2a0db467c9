#!/usr/bin/env bash
# Issue 22's hostile callers against a real `friendflow serve` (not the race
# build): 1 100 keep-alive GET /nope sockets on the callback port, 20 000
# keep-alive /healthz sockets on the admin port, and the 10 KB sparse tar
# bomb on POST /backtest. Prints, for each, how long a signed callback
# (or the bomb's refusal) took and the server's peak memory (VmHWM).
# RECONNECT=true: each socket the server closes is opened again at once
# (a connection flood rather than idle sockets). Needs Go and curl.
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
# run FLOOD… starts a server, holds the sockets of each FLOOD argument (a
# list of hostile flags) from a process of its own, and measures from
# another, quiet one: the signed callback, the /readyz probe, VmHWM.
run() {
	rm -rf "$work/data"
	"$work/friendflow" serve --sdkappid 1400000000 --callback-token "$token" --listen 127.0.0.1:18080 \
		--admin-listen 127.0.0.1:19090 --rules examples/rules --data "$work/data" --log-level error 2>"$work/log" &
	pid=$!
	for _ in $(seq 100); do curl -fs http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
	fpids=()
	for flood in "$@"; do
		# shellcheck disable=SC2086 # a list of flags
		"$work/hostile" $flood -reconnect="${RECONNECT:-false}" -flood-only -hold 15s &
		fpids+=($!)
	done
	sleep 4
	"$work/hostile" -pid "$pid" -listen 127.0.0.1:18080 -token "$token" -sockets 0 -hold 0 -target 127.0.0.1:19090 -path /readyz
	wait "${fpids[@]}"
	kill "$pid"; wait "$pid" || true; pid=
}
echo "== 1 100 keep-alive GET /nope on the callback port"
run "-target 127.0.0.1:18080 -path /nope -sockets 1100"
echo "== 20 000 keep-alive GET /healthz on the admin port"
run "-target 127.0.0.1:19090 -path /healthz -sockets 10000" "-target 127.0.0.1:19090 -path /healthz -sockets 10000"
echo "== POST /backtest: 10 KB PAX sparse tar claiming 1 GiB"
rm -rf "$work/data"
"$work/friendflow" serve --sdkappid 1400000000 --callback-token "$token" --listen 127.0.0.1:18080 \
	--admin-listen 127.0.0.1:19090 --rules examples/rules --data "$work/data" --log-level error 2>"$work/log" &
pid=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:19090/readyz >/dev/null && break; sleep 0.1; done
"$work/hostile" -pid "$pid" -tar 127.0.0.1:19090
