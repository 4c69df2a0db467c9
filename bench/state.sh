#!/usr/bin/env bash
# What one counter and one list check cost a Prev callback's reply
# (issue 25's bar: p99 with them ≤ 2 × the p99 without). Two friendflow
# servers on one core, wrk on the other, both answering
# Sns.CallbackPrevFriendAdd (examples/callbacks/prev_friend_add.json, two
# targets) against the 100 rules of `PREV=1 bench/genrules.sh`:
#
#   plain   the deny rule is `From_Account in ["spammer-1", "spammer-2"]`
#   state   the same rules, the deny rule being
#           `count("requests_by_sender", From_Account) > 1000000000 ||
#            From_Account in list("spammers")`, the list holding MEMBERS
#           accounts (not the sample's): each target is counted in
#           JetStream (a compare-and-set) before the rules, on the reply
#           path, and both checks are evaluated
#
# Each target matches one rule with a debug log, so both store 2 jobs per
# callback before replying, as bench/load.sh's callbacks store 3. Every
# request comes from the same account, so every increment is of one key:
# the worst case, a flood from one sender (SENDERS=N spreads them over N
# accounts instead). Rounds are interleaved (plain, state, plain, …);
# prints the medians of p50, p99, req/s and CPU per request and the
# ratios. Exit 0 when the p99 ratio is within TARGET_P99_RATIO and no
# decision took longer than the decision timeout, 1 when not, 2 when the
# benchmark could not be run. Writes nothing to docs/.
#
#   bench/state.sh                     # 3 rounds of 10 s per target
#   DURATION=20s ROUNDS=5 bench/state.sh
#   PROFILE=1 bench/state.sh           # also CPU profiles of the state server
#
# Environment [defaults]: DURATION [10s], ROUNDS [3], WARMUP [3s],
# CONNECTIONS [32], SERVER_CPU [0], CLIENT_CPU [1], PROFILE [0] (as in
# bench/load.sh), MEMBERS [10000] accounts in the list, SENDERS [1]
# distinct From_Account values, TARGET_P99_RATIO [2].
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PROFILE=${PROFILE:-0}
MEMBERS=${MEMBERS:-10000}
SENDERS=${SENDERS:-1}
TARGET_P99_RATIO=${TARGET_P99_RATIO:-2}
JOBS_PER_CALLBACK=2
RULES=100
SDKAPPID=1400000000
BODY=examples/callbacks/prev_friend_add.json
QUERY="SdkAppid=$SDKAPPID&CallbackCommand=Sns.CallbackPrevFriendAdd&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI"
OUT=bench/out/state
TARGETS=(plain state)

while read -r v; do unset "$v"; done < <(compgen -e | grep '^FRIENDFLOW_' || true)
log() { printf '[state] %s\n' "$*" >&2; }
die() {
	printf '[state] error: %s\n' "$*" >&2
	exit 2
}
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
[[ $MEMBERS =~ ^[1-9][0-9]*$ ]] || die "MEMBERS must be a positive integer, got $MEMBERS"
[[ $SENDERS =~ ^[1-9][0-9]*$ ]] || die "SENDERS must be a positive integer, got $SENDERS"
for t in wrk jq curl taskset; do command -v "$t" >/dev/null || die "needs $t (bench/README.md)"; done
(($(nproc) >= 2)) || die "needs 2 cores"
((SERVER_CPU != CLIENT_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"

mkdir -p "$OUT"
log "building friendflow"
go build -o "$OUT/friendflow" ./cmd/friendflow || die "go build ./cmd/friendflow failed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/friendflow-state.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
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

wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
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

# The wrk script: the sample body, or with SENDERS > 1 one of SENDERS
# bodies differing in From_Account (and Requester_Account), in turn.
if ((SENDERS > 1)); then
	for i in $(seq 1 "$SENDERS"); do
		jq -c --arg a "sender$i" '.From_Account = $a | .Requester_Account = $a' "$BODY" >"$tmp/body$i.json"
	done
	cat >"$tmp/post.lua" <<LUA
local bodies = {}
for i = 1, $SENDERS do
	local f = assert(io.open("$tmp/body" .. i .. ".json", "rb"))
	bodies[i] = f:read("*a")
	f:close()
end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
	n = n % #bodies + 1
	return wrk.format(nil, nil, nil, bodies[n])
end
LUA
	LUA=$tmp/post.lua
else
	LUA=bench/post.lua
	export BODY_FILE=$BODY
fi

declare -A PID URL ADMIN reply
started() {
	jq -nr 'first(inputs | select(.msg? == "friendflow started")) | "\(.listen) \(.admin_listen)"' "$tmp/$1.log" | grep .
}
for t in "${TARGETS[@]}"; do
	state=0
	[[ $t == state ]] && state=1
	PREV=1 STATE=$state bench/genrules.sh "$tmp/rules-$t"
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$OUT/friendflow" serve --sdkappid "$SDKAPPID" \
		--listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --rules "$tmp/rules-$t" --data "$tmp/data-$t" \
		--log-level info --log-format json --pprof 2>"$tmp/$t.log" &
	PID[$t]=$!
	pids+=("${PID[$t]}")
done
for t in "${TARGETS[@]}"; do
	PID[$t]=$(wait_for 10 real_pid "${PID[$t]}" "$OUT/friendflow") || die "friendflow ($t) did not start"
	pids+=("${PID[$t]}")
	[[ $(awk '/^Cpus_allowed_list:/ { print $2 }' "/proc/${PID[$t]}/status") == "$SERVER_CPU" ]] ||
		die "friendflow ($t) is not pinned to core $SERVER_CPU"
	wait_for 30 started "$t" >/dev/null || die "friendflow ($t) did not start: $(tail -n 20 "$tmp/$t.log")"
	read -r ff admin < <(started "$t")
	URL[$t]="http://$ff/callback?$QUERY"
	ADMIN[$t]="http://$admin"
	wait_for 30 curl -fsS -o /dev/null "${ADMIN[$t]}/readyz" || die "friendflow ($t) is not ready"
	n=$(curl -fsS "${ADMIN[$t]}/rules" | jq '.rules | length')
	[[ $n == "$RULES" ]] || die "friendflow ($t) loaded $n rules, want $RULES"
done

log "filling the list spammers with $MEMBERS accounts"
seq -f 'spammer_%.0f' 1 "$MEMBERS" >"$tmp/members.txt"
"$OUT/friendflow" lists import spammers "$tmp/members.txt" --admin-url "${ADMIN[state]}" 2>/dev/null ||
	die "lists import failed"
got=$("$OUT/friendflow" lists -o json --admin-url "${ADMIN[state]}" | jq '[.. | objects | select(.name? == "spammers") | .members? // .size? // empty] | first')
log "list spammers: $got members"

# Both answer the sample alike (every target allowed), each target
# matching one rule, no rule failing, and the state server counting.
for t in "${TARGETS[@]}"; do
	per_event=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "${ADMIN[$t]}/explain" |
		jq -c '[.[] | [.rules[] | select(.status == "matched")] | length]')
	errs=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "${ADMIN[$t]}/explain" |
		jq '[.[].rules[] | select(.status == "error")] | length')
	[[ $per_event == "[1,1]" && $errs == 0 ]] ||
		die "explain ($t): matches per event $per_event (want [1,1]), rule errors $errs (want 0)"
	reply[$t]=$(curl -fsS -H 'Content-Type: application/json' --data-binary @"$BODY" "${URL[$t]}") ||
		die "POST to $t failed"
	[[ $(jq -c '[.ActionStatus, [.ResultItem[].ResultCode]]' <<<"${reply[$t]}") == '["OK",[0,0]]' ]] ||
		die "$t answered ${reply[$t]}, want OK with both targets allowed"
done
[[ ${reply[plain]} == "${reply[state]}" ]] || die "the two answer differently: ${reply[plain]} / ${reply[state]}"

metric() {
	curl -fsS "$1/metrics" | awk -v name="$2" -v filter="${3:-}" '
		index($0, name) == 1 && (substr($0, length(name) + 1, 1) ~ /[{ ]/) && index($0, filter) { sum += $NF }
		END { printf "%d\n", sum }'
}
count_of() { "$OUT/friendflow" counters get requests_by_sender id --admin-url "${ADMIN[state]}" 2>/dev/null | grep -Eo '[0-9]+' | tail -n 1; }
log "counter requests_by_sender for id: $(count_of)"

to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") f = 1; else if (u == "ms") f = 1e3; else if (u == "s") f = 1e6; else if (u == "m") f = 6e7
		else { print "bad latency " v > "/dev/stderr"; exit 1 }
		printf "%.0f\n", n * f }'
}
run_wrk() {
	timeout $(($(seconds "$1") + 30)) taskset -c "$CLIENT_CPU" \
		wrk -t1 -c"$CONNECTIONS" -d"$1" --timeout 5s --latency -s "$LUA" "$2" >"$3" || die "wrk failed: $(cat "$3")"
	if grep -qE 'Non-2xx|Socket errors' "$3"; then die "wrk saw failed requests against $2: $(cat "$3")"; fi
}
cpu_snapshot() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
		comm = $0; sub(/^[^(]*\(/, "", comm); sub(/\).*$/, "", comm)
		rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
		print $1, f[12] + f[13], comm }'
}
# others SNAP0 SNAP1 SECONDS PID…: % of a core used by every process but
# PIDs, wrk and this script's helpers.
others() {
	local s0=$1 s1=$2 secs=$3
	shift 3
	awk -v secs="$secs" -v skip="$* $$" '
		BEGIN { n = split(skip, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 }
		FNR == NR { t0[$1] = $2; next }
		!($1 in s) && $3 !~ /^(wrk|timeout|taskset|curl|awk|mawk|cat|sort|sed|grep|jq|friendflow)$/ { o += $2 - t0[$1] }
		END { printf "%.0f\n", o / secs }' <(echo "$s0") <(echo "$s1")
}
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
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
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

noisy=0
declare -A rps p50 p99 cpu_req fails late
# late_decisions ADMIN: the decisions that took longer than 500 ms (the
# default --decision-timeout, a bucket bound of the histogram).
late_decisions() {
	curl -fsS "$1/metrics" | awk '
		/^friendflow_decision_duration_seconds_count/ { n = $NF }
		/^friendflow_decision_duration_seconds_bucket\{le="0.5"\}/ { in_time = $NF }
		END { printf "%d\n", n - in_time }'
}
measure() {
	local t=$1 r=$2 f="$OUT/wrk-$1-$2.txt" pid=${PID[$1]} ok0 ok1 reqs s0 s1 t0 t1 o
	ok0=$(metric "${ADMIN[$t]}" friendflow_callbacks_total 'result="ok"')
	local fails0 late0
	fails0=$(metric "${ADMIN[$t]}" friendflow_decisions_total 'decision="fail_')
	late0=$(late_decisions "${ADMIN[$t]}")
	s0=$(cpu_snapshot)
	t0=$EPOCHREALTIME
	run_wrk "$DURATION" "${URL[$t]}" "$f"
	t1=$EPOCHREALTIME
	s1=$(cpu_snapshot)
	o=$(others "$s0" "$s1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "${PID[plain]}" "${PID[state]}")
	((o <= 5)) || noisy=1
	reqs=$(awk '/requests in/ { print $1 }' "$f")
	rps[$t,$r]=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	p50[$t,$r]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$f")")
	p99[$t,$r]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$f")")
	cpu_req[$t,$r]=$(awk -v pid="$pid" -v reqs="$reqs" '
		FNR == NR { if ($1 == pid) t0 = $2; next }
		$1 == pid { printf "%.0f\n", ($2 - t0) * 1e4 / reqs }' <(echo "$s0") <(echo "$s1"))
	ok1=$(metric "${ADMIN[$t]}" friendflow_callbacks_total 'result="ok"')
	((ok1 - ok0 >= reqs)) || die "$t counted $((ok1 - ok0)) OK callbacks, wrk $reqs requests"
	# A decision not made within the decision timeout (500 ms) is
	# answered without the rules (fail open): the bar allows none. The
	# decisions failed in all (fail_open) include those whose caller
	# went away first: wrk closes its connections with requests in
	# flight at the end of a round.
	fails[$t,$r]=$(($(metric "${ADMIN[$t]}" friendflow_decisions_total 'decision="fail_') - fails0))
	late[$t,$r]=$(($(late_decisions "${ADMIN[$t]}") - late0))
	wait_for 120 eval '[[ $(metric "${ADMIN[$t]}" friendflow_queue_jobs) == 0 ]]' ||
		die "$t's queue did not drain within 120 s"
	settle "$pid" || log "warning: $t still busy 60 s after its round"
	log "$(printf '%-5s round %d: %7.0f req/s  p50 %6d us  p99 %6d us  CPU %4d us/req  decisions past the timeout %d (failed in all %d)  other processes %d%%' \
		"$t" "$r" "${rps[$t,$r]}" "${p50[$t,$r]}" "${p99[$t,$r]}" "${cpu_req[$t,$r]}" "${late[$t,$r]}" "${fails[$t,$r]}" "$o")"
}

log "warm-up: $WARMUP per target"
for t in "${TARGETS[@]}"; do
	run_wrk "$WARMUP" "${URL[$t]}" "$OUT/wrk-$t-warmup.txt"
	wait_for 120 eval '[[ $(metric "${ADMIN[$t]}" friendflow_queue_jobs) == 0 ]]' || die "$t's queue did not drain"
	settle "${PID[$t]}" || true
done
log "measuring: $ROUNDS rounds of $DURATION per target, interleaved"
for r in $(seq 1 "$ROUNDS"); do
	for t in "${TARGETS[@]}"; do measure "$t" "$r"; done
done
curl -fsS "${ADMIN[state]}/metrics" | grep -E '^friendflow_(state|decision)' >"$OUT/state-metrics.txt" || true
log "counter requests_by_sender for id: $(count_of); state operations $(metric "${ADMIN[state]}" friendflow_state_operations_total)," \
	"compare-and-set conflicts retried $(metric "${ADMIN[state]}" friendflow_state_conflicts_total) ($OUT/state-metrics.txt)"

if ((PROFILE)); then
	secs=$(seconds "$DURATION")
	psecs=$((secs > 4 ? secs - 2 : secs))
	log "profiling the state server for $psecs s under the same load (not measured)"
	run_wrk "$DURATION" "${URL[state]}" "$OUT/wrk-state-profile.txt" &
	wrk_pid=$!
	pids+=("$wrk_pid")
	sleep 1
	curl -fsS -m $((psecs + 30)) -o "$OUT/cpu.pprof" "${ADMIN[state]}/debug/pprof/profile?seconds=$psecs" ||
		die "fetching the CPU profile failed"
	wait "$wrk_pid" || die "the profiling wrk run failed"
	go tool pprof -top -nodecount 40 "$OUT/friendflow" "$OUT/cpu.pprof" >"$OUT/profile-top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount 60 "$OUT/friendflow" "$OUT/cpu.pprof" >"$OUT/profile-top-cum.txt" 2>/dev/null
	log "profiles: $OUT/cpu.pprof, $OUT/profile-top.txt, $OUT/profile-top-cum.txt"
fi
for t in "${TARGETS[@]}"; do cp "$tmp/$t.log" "$OUT/$t.log"; done

declare -A m_rps m_p50 m_p99 m_cpu
for t in "${TARGETS[@]}"; do
	for v in rps p50 p99 cpu_req; do
		vals=()
		for r in $(seq 1 "$ROUNDS"); do
			case $v in
			rps) vals+=("${rps[$t,$r]}") ;;
			p50) vals+=("${p50[$t,$r]}") ;;
			p99) vals+=("${p99[$t,$r]}") ;;
			cpu_req) vals+=("${cpu_req[$t,$r]}") ;;
			esac
		done
		case $v in
		rps) m_rps[$t]=$(median "${vals[@]}") ;;
		p50) m_p50[$t]=$(median "${vals[@]}") ;;
		p99) m_p99[$t]=$(median "${vals[@]}") ;;
		cpu_req) m_cpu[$t]=$(median "${vals[@]}") ;;
		esac
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
p99_ratio=$(ratio "${m_p99[state]}" "${m_p99[plain]}")
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
echo
echo "Sns.CallbackPrevFriendAdd (2 targets), 100 rules, $SENDERS sender(s), list of $MEMBERS; medians of $ROUNDS interleaved rounds of $DURATION, wrk -c$CONNECTIONS"
echo
echo "| rules | req/s | p50 | p99 | server CPU per request |"
echo "| --- | ---: | ---: | ---: | ---: |"
for t in "${TARGETS[@]}"; do
	printf '| %s | %.0f | %s | %s | %d µs |\n' "$t" "${m_rps[$t]}" "$(ms "${m_p50[$t]}")" "$(ms "${m_p99[$t]}")" "${m_cpu[$t]}"
done
printf '| state / plain | %s | %s | %s | %s |\n' "$(ratio "${m_rps[state]}" "${m_rps[plain]}")" \
	"$(ratio "${m_p50[state]}" "${m_p50[plain]}")" "$p99_ratio" "$(ratio "${m_cpu[state]}" "${m_cpu[plain]}")"
echo
for r in $(seq 1 "$ROUNDS"); do
	for t in "${TARGETS[@]}"; do
		printf '%-5s round %d: %6.0f req/s, p50 %s, p99 %s, %d µs CPU/request, %d decisions past the timeout, %d failed in all\n' \
			"$t" "$r" "${rps[$t,$r]}" "$(ms "${p50[$t,$r]}")" "$(ms "${p99[$t,$r]}")" "${cpu_req[$t,$r]}" "${late[$t,$r]}" "${fails[$t,$r]}"
	done
done
((noisy)) && echo "Warning: other processes used more than 5 % of a core in some rounds; the figures are not trustworthy." >&2
total_fails=0
for r in $(seq 1 "$ROUNDS"); do total_fails=$((total_fails + ${late[state,$r]} + ${late[plain,$r]})); done
verdict=$(awk -v r="$p99_ratio" -v t="$TARGET_P99_RATIO" -v f="$total_fails" 'BEGIN { print (r <= t && f == 0) ? "PASS" : "FAIL" }')
echo
echo "p99 with one counter and one list check: $p99_ratio × the p99 without (wanted ≤ $TARGET_P99_RATIO ×), $total_fails decisions past the timeout (wanted 0): $verdict"
[[ $verdict == PASS ]]
