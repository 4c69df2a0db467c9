#!/usr/bin/env bash
# Load benchmark: friendflow against a bare net/http "ceiling" server that
# only reads the body and answers OK, both on one core, wrk on the other.
# Prints the medians over interleaved rounds, checks the targets and writes
# the generated section of docs/performance.md. Exit 0 when every target is
# met, 1 when one is missed, 2 when the benchmark could not be run (nothing
# measured is written then).
#
#   bench/load.sh                       # 10 s rounds, 3 rounds per target
#   DURATION=30s ROUNDS=5 bench/load.sh
#   PROFILE=1 bench/load.sh             # also a CPU profile of friendflow under load
#
# Environment (defaults in brackets):
#   DURATION [10s]     length of one measured wrk run (Ns or Nm)
#   ROUNDS [3]         measured runs per target, interleaved raw, friendflow, raw, …
#   WARMUP [3s]        one un-measured wrk run per target before the rounds
#   CONNECTIONS [32]   wrk connections (one wrk thread)
#   SERVER_CPU [0]     core the servers are pinned to
#   CLIENT_CPU [1]     core wrk is pinned to
#   PROFILE [0]        1: after the rounds, one more friendflow run while
#                      `go tool pprof -top` samples it (not measured)
#   WRITE [1]          0: do not touch docs/performance.md
#   MATCH_ONLY [0]     1: the same rules without actions, so friendflow
#                      decodes and matches but renders and queues nothing:
#                      what the jobs cost, by difference (implies WRITE=0)
#
# Everything listens on 127.0.0.1 on ports the kernel picks; every wait has
# a deadline; all processes started here are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PROFILE=${PROFILE:-0}
WRITE=${WRITE:-1}
MATCH_ONLY=${MATCH_ONLY:-0}
JOBS_PER_CALLBACK=3
FF_LABEL="friendflow (100 rules, 3 jobs per callback)"
if ((MATCH_ONLY)); then
	WRITE=0
	JOBS_PER_CALLBACK=0
	FF_LABEL="friendflow (100 rules without actions: matching only)"
fi

SDKAPPID=1400000000
BODY=examples/callbacks/friend_add.json
QUERY="SdkAppid=$SDKAPPID&CallbackCommand=Sns.CallbackFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
OK_REPLY='{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}'
RULES=100

# Targets, as ratios to the ceiling measured in the same run.
TARGET_RPS_RATIO=0.35 # friendflow req/s >= this x the ceiling's
TARGET_P99_RATIO=3    # friendflow p99 <= this x the ceiling's
TARGET_HWM_MIB=80     # friendflow VmHWM <= this

OUT=bench/out

# The environment twins of serve's flags must not leak in from the caller
# (a FRIENDFLOW_NATS_URL would point the benchmark somewhere else).
while read -r v; do unset "$v"; done < <(compgen -e | grep '^FRIENDFLOW_' || true)
log() { printf '[bench] %s\n' "$*" >&2; }
die() {
	printf '[bench] error: %s\n' "$*" >&2
	exit 2
}

# seconds DURATION: wrk's duration as whole seconds (Ns, Nm or N).
seconds() {
	case $1 in
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}
for d in "$DURATION" "$WARMUP"; do
	[[ $d =~ ^[1-9][0-9]*[sm]?$ ]] || die "durations are whole seconds or minutes (10s, 2m), got $d"
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "ROUNDS must be 1 to 99, got $ROUNDS"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer, got $CONNECTIONS"

# --- tools -----------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
	log "installing ${missing[*]} from Debian packages"
	apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ncpu=$(nproc)
((ncpu >= 2)) || die "needs 2 cores (servers on one, wrk on the other); nproc says $ncpu"
((SERVER_CPU != CLIENT_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"

# --- build -----------------------------------------------------------------
mkdir -p "$OUT"
log "building friendflow and the ceiling server"
go build -o "$OUT/friendflow" ./cmd/friendflow || die "go build ./cmd/friendflow failed"
go build -o "$OUT/ceiling" ./bench/ceiling

# --- processes, cleaned up on any exit ---------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/friendflow-bench.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		# friendflow drains for up to --shutdown-timeout; do not wait forever.
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS CMD…: run CMD until it succeeds, at most SECONDS.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

MATCH_ONLY=$MATCH_ONLY bench/genrules.sh "$tmp/rules"

log "starting the servers on core $SERVER_CPU"
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$OUT/ceiling" -listen 127.0.0.1:0 2>"$tmp/ceiling.log" &
raw_pid=$!
pids+=("$raw_pid")

ff_args=(serve --sdkappid "$SDKAPPID" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
	--rules "$tmp/rules" --data "$tmp/data" --log-level info --log-format json)
((PROFILE)) && ff_args+=(--pprof)
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$OUT/friendflow" "${ff_args[@]}" 2>"$tmp/friendflow.log" &
ff_pid=$!
pids+=("$ff_pid")

# real_pid PID BINARY: the process running BINARY, PID itself or a child:
# bash may fork a subshell around a background command, and the measurements
# must read the server's own /proc entry.
real_pid() {
	local want c
	want=$(realpath "$2")
	for c in "$1" $(pgrep -P "$1"); do
		if [[ $(readlink "/proc/$c/exe" 2>/dev/null) == "$want" ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}
raw_pid=$(wait_for 10 real_pid "$raw_pid" "$OUT/ceiling") || die "the ceiling server did not start"
ff_pid=$(wait_for 10 real_pid "$ff_pid" "$OUT/friendflow") || die "friendflow did not start"
pids+=("$raw_pid" "$ff_pid")
for pid in "$raw_pid" "$ff_pid"; do
	[[ $(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/$pid/status") == "$SERVER_CPU" ]] ||
		die "process $pid is not pinned to core $SERVER_CPU"
done

raw_addr() { sed -n 's/^listening on //p' "$tmp/ceiling.log" | grep .; }
ff_started() {
	jq -nr 'first(inputs | select(.msg? == "friendflow started")) | "\(.listen) \(.admin_listen)"' \
		"$tmp/friendflow.log" | grep .
}
wait_for 10 raw_addr >/dev/null || die "the ceiling server did not start: $(cat "$tmp/ceiling.log")"
wait_for 30 ff_started >/dev/null || die "friendflow did not start: $(tail -n 20 "$tmp/friendflow.log")"
RAW=$(raw_addr)
read -r FF ADMIN < <(ff_started)
for a in "$RAW" "$FF" "$ADMIN"; do
	[[ $a == 127.0.0.1:* ]] || die "a server is not on loopback: $a"
done
RAW_URL="http://$RAW/callback?$QUERY"
FF_URL="http://$FF/callback?$QUERY"
ADMIN_URL="http://$ADMIN"

# --- make sure friendflow does the real work, not rejections ------------------
wait_for 30 curl -fsS -o /dev/null "$ADMIN_URL/readyz" ||
	die "friendflow is not ready: $(curl -sS "$ADMIN_URL/readyz"; tail -n 20 "$tmp/friendflow.log")"
n=$(curl -fsS "$ADMIN_URL/rules" | jq '.rules | length')
[[ $n == "$RULES" ]] || die "friendflow loaded $n rules, want $RULES: $(curl -sS "$ADMIN_URL/rules" | jq -c .status)"
# Each of the sample's three events matches exactly one rule, none errs.
per_event=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "$ADMIN_URL/explain" |
	jq -c '[.[] | [.rules[] | select(.status == "matched")] | length]')
errs=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "$ADMIN_URL/explain" | jq '[.[].rules[] | select(.status == "error")] | length')
[[ $per_event == "[1,1,1]" && $errs == 0 ]] ||
	die "explain: matches per event $per_event (want [1,1,1]), rule errors $errs (want 0)"
for url in "$FF_URL" "$RAW_URL"; do
	got=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "$url") ||
		die "POST $url failed"
	[[ $got == "$OK_REPLY" ]] || die "POST $url answered $got, want $OK_REPLY"
done

# --- friendflow's own counters --------------------------------------------------
# metric NAME [FILTER]: the sum of NAME's samples whose labels contain FILTER.
metric() {
	curl -fsS "$ADMIN_URL/metrics" | awk -v name="$1" -v filter="${2:-}" '
		index($0, name) == 1 && (substr($0, length(name) + 1, 1) ~ /[{ ]/) && index($0, filter) { sum += $NF }
		END { printf "%d\n", sum }'
}
queue_idle() { [[ $(metric friendflow_queue_jobs) == 0 ]]; }
log_lines() { wc -l <"$tmp/friendflow.log"; }

# --- wrk ------------------------------------------------------------------------
# to_us VALUE: wrk's latency ("812.00us", "1.23ms", "2.01s") in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") f = 1; else if (u == "ms") f = 1e3; else if (u == "s") f = 1e6; else if (u == "m") f = 6e7
		else { print "bad latency " v > "/dev/stderr"; exit 1 }
		printf "%.0f\n", n * f }'
}

# run_wrk DURATION URL OUTFILE: one pinned wrk run; fails on any non-2xx
# answer or socket error, since those would not be the work we measure.
# Sets wrk_cpu to wrk's CPU use in % of its core.
wrk_cpu=""
run_wrk() {
	local secs
	secs=$(seconds "$1")
	local TIMEFORMAT='%U %S %R' times
	# wrk's own CPU use, to tell a server-bound run from a client-bound one.
	times=$({ time timeout $((secs + 30)) taskset -c "$CLIENT_CPU" \
		wrk -t1 -c"$CONNECTIONS" -d"$1" --timeout 5s --latency -s bench/post.lua "$2" >"$3"; } 2>&1) ||
		die "wrk failed: $(cat "$3")"
	wrk_cpu=$(awk '{ printf "%.0f%%", 100 * ($1 + $2) / $3 }' <<<"$times")
	if grep -qE 'Non-2xx|Socket errors' "$3"; then
		die "wrk saw failed requests against $2:
$(cat "$3")"
	fi
}

# cpu_snapshot: "pid ticks comm" for every process, ticks being its
# user+system CPU time (scheduler accounting, exact, unlike the per-core
# figures of /proc/stat, which are sampled and lose ticks on this VM).
cpu_snapshot() {
	# cat, not awk, reads the files: a process may exit between the glob
	# and the read, and mawk stops at a file it cannot open.
	# cat then fails, and pipefail would end the script without a word.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
		comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\).*$/, "", comm)
		rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
		print $1, f[12] + f[13], comm }'
}

# cpu_use SNAP0 SNAP1 SECONDS PID OTHER: the CPU use between the snapshots
# of PID, of OTHER (the server not being measured, which shares its core),
# and of all other processes but wrk and this script's helpers, in % of one
# core. Fails when the other processes used more than 5 %: another benchmark
# or build on this machine then competed with the servers and wrk.
cpu_use() {
	awk -v secs="$3" -v pid="$4" -v self="$$" -v other="$5" '
		FNR == NR { t0[$1] = $2; next }
		{
			d = $2 - t0[$1]
			if ($1 == pid) { mine += d; next }
			if ($1 == other) { idle += d; next }
			if ($1 == self || $3 ~ /^(wrk|timeout|taskset|curl|awk|mawk|cat|sort|sed|grep|jq)$/) next
			others += d
		}
		END {
			hz = 100
			printf "server CPU %.0f%%, the other server %.0f%%, other processes %.0f%%\n",
				100 * mine / hz / secs, 100 * idle / hz / secs, 100 * others / hz / secs
			exit (100 * others / hz / secs > 5)
		}' <(echo "$1") <(echo "$2")
}
noisy=0
declare -A rps p50 p99 hwm core_use cpu_req
# measure TARGET PID URL ROUND: one measured round; records req/s, p50, p99
# and how the server core was used.
measure() {
	local target=$1 pid=$2 url=$3 round=$4 f="$OUT/wrk-$1-$4.txt"
	local ok0 jobs0 ok1 jobs1 reqs
	if [[ $target == friendflow ]]; then
		ok0=$(metric friendflow_callbacks_total 'result="ok"')
		jobs0=$(metric friendflow_jobs_total 'outcome="done"')
	fi
	local snap0 snap1 t0 t1 other_pid=$raw_pid
	[[ $target == raw ]] && other_pid=$ff_pid
	snap0=$(cpu_snapshot)
	t0=$EPOCHREALTIME
	run_wrk "$DURATION" "$url" "$f"
	t1=$EPOCHREALTIME
	snap1=$(cpu_snapshot)
	core_use[$target,$round]="$(cpu_use "$snap0" "$snap1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
		"$pid" "$other_pid"), wrk CPU $wrk_cpu" || noisy=1
	rps[$target,$round]=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	p50[$target,$round]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$f")")
	p99[$target,$round]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$f")")
	reqs=$(awk '/requests in/ { print $1 }' "$f")
	# CPU time per request: unlike req/s, hardly changed by what else runs
	# on the machine, so the figure to compare between noisy runs.
	cpu_req[$target,$round]=$(awk -v pid="$pid" -v reqs="$reqs" '
		FNR == NR { if ($1 == pid) t0 = $2; next }
		$1 == pid { printf "%.1f\n", ($2 - t0) * 1e4 / reqs }' <(echo "$snap0") <(echo "$snap1"))
	local note=""
	if [[ $target == friendflow ]]; then
		ok1=$(metric friendflow_callbacks_total 'result="ok"')
		jobs1=$(metric friendflow_jobs_total 'outcome="done"')
		# The server may finish a few requests wrk stopped counting; never fewer.
		((ok1 - ok0 >= reqs)) || die "friendflow counted $((ok1 - ok0)) OK callbacks, wrk $reqs requests"
		note="; jobs run during the round $((jobs1 - jobs0)) of $((JOBS_PER_CALLBACK * (ok1 - ok0))) stored, backlog $(metric friendflow_queue_jobs)"
		# Let the workers finish before the ceiling's next round, which
		# must not share its core with friendflow's backlog.
		local t0=$SECONDS
		wait_for 120 queue_idle || die "friendflow's queue did not drain within 120 s"
		note+=", drained in $((SECONDS - t0)) s"
		# JetStream and the collector go on working for a while after the
		# last job (removing acknowledged messages, expiring message ids).
		t0=$SECONDS
		if settle "$pid"; then
			note+=", idle after $((SECONDS - t0)) s more"
		else
			note+=", STILL BUSY after $((SECONDS - t0)) s more"
		fi
	fi
	log "$(printf '%-10s round %d: %9.0f req/s  p50 %6d us  p99 %6d us  CPU %5.1f us/req; %s%s' \
		"$target" "$round" "${rps[$target,$round]}" "${p50[$target,$round]}" "${p99[$target,$round]}" \
		"${cpu_req[$target,$round]}" "${core_use[$target,$round]}" "$note")"
}

# median VALUES…
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# settle PID: wait until PID uses under 3 % of a core over a second, for
# at most 60 s, so it does not take CPU from the next round's target.
settle() {
	local deadline=$((SECONDS + 60)) a b
	while ((SECONDS < deadline)); do
		a=$(proc_ticks "$1")
		sleep 1
		b=$(proc_ticks "$1")
		((b - a < 3)) && return 0
	done
	return 1
}
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# --- rounds ---------------------------------------------------------------------
lines_before=$(log_lines)
log "warm-up: $WARMUP per target"
run_wrk "$WARMUP" "$RAW_URL" "$OUT/wrk-raw-warmup.txt"
run_wrk "$WARMUP" "$FF_URL" "$OUT/wrk-friendflow-warmup.txt"
wait_for 120 queue_idle || die "friendflow's queue did not drain after the warm-up"
settle "$ff_pid" || log "warning: friendflow still uses CPU 60 s after the warm-up"

log "measuring: $ROUNDS rounds of $DURATION per target, interleaved"
for r in $(seq 1 "$ROUNDS"); do
	measure raw "$raw_pid" "$RAW_URL" "$r"
	measure friendflow "$ff_pid" "$FF_URL" "$r"
done
hwm[raw]=$(hwm_kib "$raw_pid")
hwm[friendflow]=$(hwm_kib "$ff_pid")
extra=$(($(log_lines) - lines_before))
if ((extra > 10)); then
	log "warning: friendflow wrote $extra log lines during the run (want none at info): see $OUT/friendflow.log"
	tail -n "$extra" "$tmp/friendflow.log" | jq -r '"\(.level) \(.msg): \(.error // "" | .[0:120])"' 2>/dev/null |
		sed -E 's/[0-9a-f]{32}/<id>/g' | sort | uniq -c | sort -rn | head -n 5 >&2 || true
fi
cp "$tmp/friendflow.log" "$OUT/friendflow.log"

if ((PROFILE)); then
	secs=$(seconds "$DURATION")
	psecs=$((secs > 4 ? secs - 2 : secs))
	log "profiling friendflow for $psecs s under the same load (not measured)"
	run_wrk "$DURATION" "$FF_URL" "$OUT/wrk-friendflow-profile.txt" &
	wrk_pid=$!
	pids+=("$wrk_pid")
	sleep 1
	curl -fsS -m $((psecs + 30)) -o "$OUT/cpu.pprof" "$ADMIN_URL/debug/pprof/profile?seconds=$psecs" ||
		die "fetching the CPU profile failed"
	go tool pprof -top -nodecount 40 "$OUT/friendflow" "$OUT/cpu.pprof" >"$OUT/profile-top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount 60 "$OUT/friendflow" "$OUT/cpu.pprof" >"$OUT/profile-top-cum.txt" 2>/dev/null
	wait "$wrk_pid" || die "the profiling wrk run failed"
	# Allocations since the start (all rounds): what feeds the collector.
	curl -fsS -m 30 -o "$OUT/allocs.pprof" "$ADMIN_URL/debug/pprof/allocs" || die "fetching the allocation profile failed"
	go tool pprof -sample_index=alloc_space -top -nodecount 40 "$OUT/friendflow" "$OUT/allocs.pprof" \
		>"$OUT/profile-allocs.txt" 2>/dev/null
	log "profiles: $OUT/cpu.pprof, $OUT/profile-top.txt (flat), $OUT/profile-top-cum.txt (cumulative)," \
		"$OUT/allocs.pprof, $OUT/profile-allocs.txt (bytes allocated)"
fi

# --- report ---------------------------------------------------------------------
declare -A med_rps med_p50 med_p99 med_cpu hwm_mib
for t in raw friendflow; do
	vals=()
	for r in $(seq 1 "$ROUNDS"); do vals+=("${cpu_req[$t,$r]}"); done
	med_cpu[$t]=$(median "${vals[@]}")
	vals=()
	for r in $(seq 1 "$ROUNDS"); do vals+=("${rps[$t,$r]}"); done
	med_rps[$t]=$(median "${vals[@]}")
	vals=()
	for r in $(seq 1 "$ROUNDS"); do vals+=("${p50[$t,$r]}"); done
	med_p50[$t]=$(median "${vals[@]}")
	vals=()
	for r in $(seq 1 "$ROUNDS"); do vals+=("${p99[$t,$r]}"); done
	med_p99[$t]=$(median "${vals[@]}")
	hwm_mib[$t]=$(awk -v k="${hwm[$t]}" 'BEGIN { printf "%.1f", k / 1024 }')
done
rps_ratio=$(awk -v a="${med_rps[friendflow]}" -v b="${med_rps[raw]}" 'BEGIN { printf "%.2f", a / b }')
# What one core could do if CPU were the only limit, relative to the ceiling.
cpu_ratio=$(awk -v a="${med_cpu[friendflow]}" -v b="${med_cpu[raw]}" 'BEGIN { printf "%.2f", b / a }')
p99_ratio=$(awk -v a="${med_p99[friendflow]}" -v b="${med_p99[raw]}" 'BEGIN { printf "%.2f", a / b }')
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "PASS" : "FAIL") }'; }
v_rps=$(verdict "$(awk -v r="$rps_ratio" -v t="$TARGET_RPS_RATIO" 'BEGIN { print (r >= t) }')")
v_p99=$(verdict "$(awk -v r="$p99_ratio" -v t="$TARGET_P99_RATIO" 'BEGIN { print (r <= t) }')")
v_hwm=$(verdict "$(awk -v m="${hwm_mib[friendflow]}" -v t="$TARGET_HWM_MIB" 'BEGIN { print (m <= t) }')")

ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
table=$(
	echo "| target | req/s | p50 | p99 | VmHWM | server CPU per request | req/s vs ceiling | p99 vs ceiling | requests per CPU-second vs ceiling |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	printf '| raw net/http ceiling | %.0f | %s | %s | %s MiB | %.1f µs | 1.00 | 1.00 | 1.00 |\n' \
		"${med_rps[raw]}" "$(ms "${med_p50[raw]}")" "$(ms "${med_p99[raw]}")" "${hwm_mib[raw]}" "${med_cpu[raw]}"
	printf '| %s | %.0f | %s | %s | %s MiB | %.1f µs | %s | %s | %s |\n' "$FF_LABEL" \
		"${med_rps[friendflow]}" "$(ms "${med_p50[friendflow]}")" "$(ms "${med_p99[friendflow]}")" \
		"${hwm_mib[friendflow]}" "${med_cpu[friendflow]}" "$rps_ratio" "$p99_ratio" "$cpu_ratio"
	echo
	echo "| target | wanted | measured | |"
	echo "| --- | --- | --- | --- |"
	echo "| friendflow req/s | ≥ $TARGET_RPS_RATIO × the ceiling | $rps_ratio × | $v_rps |"
	echo "| friendflow p99 | ≤ $TARGET_P99_RATIO × the ceiling | $p99_ratio × | $v_p99 |"
	echo "| friendflow VmHWM | ≤ $TARGET_HWM_MIB MiB | ${hwm_mib[friendflow]} MiB | $v_hwm |"
)
rounds_detail=$(
	for r in $(seq 1 "$ROUNDS"); do
		for t in raw friendflow; do
			printf '%-10s round %d: %6.0f req/s, p50 %s, p99 %s, %.1f µs CPU/request; %s\n' "$t" "$r" "${rps[$t,$r]}" \
				"$(ms "${p50[$t,$r]}")" "$(ms "${p99[$t,$r]}")" "${cpu_req[$t,$r]}" "${core_use[$t,$r]}"
		done
	done
)
warning=""
if ((noisy)); then
	warning="Warning: other processes on this machine used more than 5 % of a core in some rounds (see Rounds);
the figures are not trustworthy. Run again on a quiet machine."
fi
echo
echo "$table"
echo
echo "$rounds_detail"
[[ -z $warning ]] || printf '\n%s\n' "$warning" >&2

if ((WRITE)); then
	cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	dirty=""
	[[ -z $(git status --porcelain -- cmd engine rules actions go.mod go.sum 2>/dev/null) ]] ||
		dirty=" with uncommitted changes to the code"
	cmd="DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS bench/load.sh"
	section=$(
		echo "<!-- bench/load.sh:begin (generated; edit outside these markers) -->"
		echo "## Load: friendflow against a bare net/http server"
		echo
		echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') with \`$cmd\`."
		echo
		echo "- machine: $ncpu cores, $cpu_model, Linux $(uname -r)"
		echo "- $(go version)"
		echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
		echo "- servers pinned to core $SERVER_CPU (GOMAXPROCS=1), wrk to core $CLIENT_CPU:" \
			"\`wrk -t1 -c$CONNECTIONS -d$DURATION --latency\`, POSTing \`$BODY\` (3 pairs) to each"
		echo "- friendflow: embedded queue under a temporary \`--data\`, \`--log-level info\`, $RULES generated rules" \
			"(\`bench/genrules.sh\`); each pair matches one rule whose action is a \`log\` at debug, so every callback" \
			"stores 3 jobs before it is answered and the workers run them; the queue is drained between rounds"
		echo "- ceiling: \`bench/ceiling\`, reads the body and answers the OK JSON"
		echo "- medians over $ROUNDS interleaved rounds after a $WARMUP warm-up per target; VmHWM read after the rounds"
		echo
		echo "$table"
		echo
		[[ -z $warning ]] || printf '%s\n\n' "$warning"
		echo "Rounds:"
		echo
		echo '```'
		echo "$rounds_detail"
		echo '```'
		echo "<!-- bench/load.sh:end -->"
	)
	out=docs/performance.md
	if [[ -f $out ]] && grep -q '<!-- bench/load.sh:begin' "$out"; then
		echo "$section" >"$tmp/section.md"
		awk -v f="$tmp/section.md" '
			/<!-- bench\/load.sh:begin/ { while ((getline l <f) > 0) print l; skip = 1; next }
			/<!-- bench\/load.sh:end -->/ { skip = 0; next }
			!skip' "$out" >"$tmp/performance.md"
		cat "$tmp/performance.md" >"$out"
	else
		mkdir -p "$(dirname "$out")"
		{
			if [[ -f $out ]]; then
				cat "$out"
				echo
			else
				cat <<'EOF'
# Performance

How fast friendflow is, measured by the scripts under `bench/` (see `bench/README.md`).

EOF
			fi
			echo "$section"
		} >"$tmp/performance.md"
		cat "$tmp/performance.md" >"$out"
	fi
	log "wrote $out"
fi

[[ $v_rps == PASS && $v_p99 == PASS && $v_hwm == PASS ]] || exit 1
