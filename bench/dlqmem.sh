#!/usr/bin/env bash
# bench/dlqmem.sh: the server's peak memory (VmHWM) while an operator
# works through 100 000 dead letters, one operation per fresh `serve`.
#
# It fills the embedded store the way an outage does: four rules (r0..r3,
# a quarter of the pairs each) send a webhook to a port nobody listens on,
# with one attempt, so each of N pairs (100 callbacks of N/100 pairs)
# becomes a dead letter. Then, for each operation, it starts `serve` on
# that store, waits until it is ready, runs the operation and prints the
# process's VmHWM (/proc/PID/status, the peak resident set since it
# started) next to the bar. The webhook target is up again for the replay,
# as after an outage. Exit status: 0 if every operation is within the
# bar, 1 if one is not, 2 if the benchmark could not run.
#
#   bench/dlqmem.sh                   # 100 000 dead letters, bar 96 MiB
#   N=20000 bench/dlqmem.sh           # a smaller store
#   SETTLE=0 bench/dlqmem.sh          # each operation right after the start, not 12 s later
#   PPROF=1 bench/dlqmem.sh           # plus a heap profile after each operation in bench/out/dlqmem
#   STORE=/tmp/dlq100k bench/dlqmem.sh  # keep the filled store there, and start from a copy of it next time
#   ONLY='replay --rule r0$' bench/dlqmem.sh  # only the operations whose name matches (ONLY=none: fill only)
#   GOMEMLIMIT=off bench/dlqmem.sh    # serve with no soft memory limit
#
# serve runs with the GOMEMLIMIT it derives in the shipped sidecar manifest's
# container: half its memory limit (internal/memlimit), read from
# examples/kubernetes/sidecar.yaml. A GOMEMLIMIT in the environment wins.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
BAR_MIB=${BAR_MIB:-96}
PPROF=${PPROF:-0}
ONLY=${ONLY:-}
# Seconds between serve's start and the operation: JetStream keeps the
# store blocks it read at start (16 MiB at 100 000 dead letters) for 10 s
# after their last use. 0 measures the operation on top of the start.
SETTLE=${SETTLE:-12}
SDKAPPID=1400000000
QUERY="SdkAppid=$SDKAPPID&CallbackCommand=Sns.CallbackFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
OUT=bench/out
PROF=$OUT/dlqmem

while read -r v; do unset "$v"; done < <(compgen -e | grep '^FRIENDFLOW_' || true)
log() { printf '[dlqmem] %s\n' "$*" >&2; }
die() {
	printf '[dlqmem] error: %s\n' "$*" >&2
	exit 2
}
[[ $N =~ ^[1-9][0-9]*00$ ]] || die "N must be a multiple of 100, got $N"
if [[ -z ${GOMEMLIMIT:-} ]]; then
	# The container limit of friendflow in the sidecar example (the line
	# "limits: { memory: 128Mi }"), and half of it as serve derives it.
	limit_mib=$(sed -n 's/^ *limits: *{ *memory: *\([0-9][0-9]*\)Mi *}.*/\1/p' examples/kubernetes/sidecar.yaml | head -n 1)
	[[ -n $limit_mib ]] || die "no memory limit in Mi found in examples/kubernetes/sidecar.yaml"
	GOMEMLIMIT=$((limit_mib / 2))MiB
	log "GOMEMLIMIT=$GOMEMLIMIT, as serve derives it in the sidecar manifest's $limit_mib MiB container"
fi
export GOMEMLIMIT
missing=()
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
	log "installing ${missing[*]} from Debian packages"
	apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$OUT" "$PROF"
log "building friendflow and the webhook target"
go build -o "$OUT/friendflow" ./cmd/friendflow || die "go build ./cmd/friendflow failed"
go build -o "$OUT/ceiling" ./bench/ceiling || die "go build ./bench/ceiling failed"
FF=$OUT/friendflow

tmp=$(mktemp -d "${TMPDIR:-/tmp}/friendflow-dlqmem.XXXXXX")
pids=()
stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# The webhook target: the ceiling server answers 200 to anything. Its port
# is taken from a first start and closed again for the fill (a kept store
# names the port it was filled with).
hook_addr() { sed -n 's/^listening on //p' "$tmp/hook.log" | grep .; }
reuse=0
if [[ -n ${STORE:-} && -f $STORE/n && $(cat "$STORE/n") == "$N" ]]; then
	reuse=1
	HOOK=$(cat "$STORE/hook")
else
	"$OUT/ceiling" -listen 127.0.0.1:0 2>"$tmp/hook.log" &
	hook_pid=$!
	pids+=("$hook_pid")
	wait_for 10 hook_addr >/dev/null || die "the webhook target did not start"
	HOOK=$(hook_addr)
	stop_pid "$hook_pid"
fi

mkdir -p "$tmp/rules"
{
	echo "rules:"
	for r in 0 1 2 3; do
		cat <<-EOF
			  - name: r$r
			    on: Sns.CallbackFriendAdd
			    when: From_Account == "f$r"
			    actions:
			      - webhook: { url: "http://$HOOK/hook/\${ To_Account }" }
			        retry: { attempts: 1 }
		EOF
	done
} >"$tmp/rules/outage.yaml"

# serve_start starts serve on the store and sets PID and ADMIN.
serve_start() {
	local args=(serve --sdkappid "$SDKAPPID" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
		--rules "$tmp/rules" --data "$tmp/data" --log-level info --log-format json "$@")
	((PPROF)) && args+=(--pprof)
	: >"$tmp/serve.log"
	"$FF" "${args[@]}" 2>"$tmp/serve.log" &
	PID=$!
	pids+=("$PID")
	started() { jq -nr 'first(inputs | select(.msg? == "friendflow started")) | "\(.listen) \(.admin_listen)"' "$tmp/serve.log" | grep .; }
	wait_for 60 started >/dev/null || die "serve did not start: $(tail -n 20 "$tmp/serve.log")"
	read -r CALLBACK ADMIN < <(started)
	wait_for 60 curl -fsS -o /dev/null "http://$ADMIN/readyz" || die "serve is not ready: $(tail -n 20 "$tmp/serve.log")"
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status"; }
dead_total() { curl -fsS "http://$ADMIN/dlq?limit=1" | jq .total; }

fill() {
	log "filling the store with $N dead letters"
	serve_start --workers 8
	gen_callback() { # gen_callback K: N/100 pairs, From_Account f0..f3 in turn
		awk -v k="$1" -v n=$((N / 100)) 'BEGIN {
			printf "{\"CallbackCommand\":\"Sns.CallbackFriendAdd\",\"ClientCmd\":\"friend_add\",\"Admin_Account\":\"\",\"ForceFlag\":0,\"PairList\":["
			for (i = 0; i < n; i++) {
				printf "%s{\"From_Account\":\"f%d\",\"To_Account\":\"user-%d-%d\",\"Initiator_Account\":\"f%d\"}", (i ? "," : ""), i % 4, k, i, i % 4
			}
			printf "]}"
		}'
	}
	for k in $(seq 0 99); do
		gen_callback "$k" | curl -fsS -o /dev/null --data-binary @- -H 'Content-Type: application/json' \
			"http://$CALLBACK/callback?$QUERY" || die "callback $k refused: $(tail -n 5 "$tmp/serve.log")"
	done
	full() { [[ $(dead_total) == "$N" ]]; }
	wait_for 600 full || die "only $(dead_total) of $N dead letters after 10 minutes"
	stop_pid "$PID"
}
if ((reuse)); then
	log "copying the store of $N dead letters from $STORE"
	cp -a "$STORE/data" "$tmp/data"
else
	fill
	if [[ -n ${STORE:-} ]]; then
		rm -rf "$STORE" && mkdir -p "$STORE" && cp -a "$tmp/data" "$STORE/data" && echo "$HOOK" >"$STORE/hook" && echo "$N" >"$STORE/n"
	fi
fi
log "$(du -sh "$tmp/data" | cut -f1) in the store"

fail=0
report() { # report NAME: VmHWM of the running serve against the bar
	local kib mib
	kib=$(hwm_kib)
	mib=$(((kib + 1023) / 1024))
	((PPROF)) && curl -fsS -o "$PROF/$(tr -cs "a-z0-9" "_" <<<"$1")heap" "http://$ADMIN/debug/pprof/heap"
	local verdict=ok
	((mib <= BAR_MIB)) || {
		verdict=OVER
		fail=1
	}
	printf '%-36s %5d MiB  %s\n' "$1" "$mib" "$verdict"
}
selected() { [[ -z $ONLY || $1 =~ $ONLY ]]; }
measure() { # measure NAME CMD...: CMD's run on a fresh serve, if ONLY selects it
	local name=$1
	shift
	: >"$tmp/op.out"
	selected "$name" || return 0
	serve_start
	sleep "$SETTLE"
	"$@" >"$tmp/op.out" 2>"$tmp/op.err" || die "$name failed: $(tail -n 5 "$tmp/op.err")"
	report "$name"
	stop_pid "$PID"
}
cli() { "$FF" "$@" --admin-url "http://$ADMIN"; }
console() { curl -fsS -o /dev/null "http://$ADMIN/ui/dlq$1"; }
two_consoles() {
	console "" &
	local a=$!
	console "" &
	local b=$!
	wait "$a" && wait "$b"
}
filtered_two_consoles() {
	console "?rule=r3&error=refused" &
	local a=$!
	console "?rule=r3&error=refused" &
	local b=$!
	wait "$a" && wait "$b"
}

printf '%-36s %9s  (bar %d MiB, %d dead letters, GOMEMLIMIT=%s)\n' operation VmHWM "$BAR_MIB" "$N" "$GOMEMLIMIT"
measure "serve, idle" true
measure "dlq list" cli dlq list
measure "dlq list --limit 0 (every one)" cli dlq list --limit 0
measure "console /ui/dlq" console ""
measure "console /ui/dlq, two at once" two_consoles
measure "console filtered, two at once" filtered_two_consoles
measure "dlq replay --rule r0 --dry-run" cli dlq replay --rule r0 --dry-run
"$OUT/ceiling" -listen "$HOOK" 2>"$tmp/hook.log" &
hook_pid=$!
pids+=("$hook_pid")
wait_for 10 hook_addr >/dev/null || die "the webhook target did not start again on $HOOK"
measure "dlq replay --rule r0" cli dlq replay --rule r0
if selected "dlq replay --rule r0"; then
	grep -q "^$((N / 4)) replayed" "$tmp/op.out" || die "replay: $(cat "$tmp/op.out")"
fi
measure "dlq drop --all --yes" cli dlq drop --all --yes
if selected "dlq drop --all --yes"; then
	# After the replay, the other three quarters; without it, all.
	want=$N
	selected "dlq replay --rule r0" && want=$((N * 3 / 4))
	grep -q "^$want dropped" "$tmp/op.out" || die "drop: $(cat "$tmp/op.out")"
fi
exit "$fail"
