#!/usr/bin/env bash
# Lists at scale: imports MEMBERS accounts (one a line) into a list of a
# running `friendflow serve` on its embedded JetStream, then replaces the
# list with as many others, and reports the time of each and the serve
# process's peak resident memory (VmHWM) before and after. The import is
# streamed both ways: neither the CLI nor the server holds the file.
#
#   bench/lists-import.sh                 # 1 000 000 members
#   MEMBERS=200000 bench/lists-import.sh
#
# Everything listens on 127.0.0.1 on free ports; every wait has a
# deadline; the serve started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${MEMBERS:-1000000}
work=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/friendflow" ./cmd/friendflow
ff=$work/friendflow
mkdir -p "$work/rules"
cat > "$work/rules/lists.yaml" <<'YAML'
lists:
  - name: spammers
rules:
  - name: deny-listed
    on: Sns.CallbackPrevFriendAdd
    when: From_Account in list("spammers")
    actions:
      - deny: { code: 38001 }
YAML
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin=127.0.0.1:$(port)
"$ff" serve --sdkappid 1400000000 --listen 127.0.0.1:"$(port)" --admin-listen "$admin" \
	--rules "$work/rules" --data "$work/data" --log-level warn --pprof 2>"$work/serve.log" &
pid=$!
for _ in $(seq 200); do
	curl -sf "http://$admin/readyz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://$admin/readyz" >/dev/null || { echo "serve never became ready" >&2; cat "$work/serve.log" >&2; exit 2; }

hwm() { awk '/VmHWM/ {printf "%d MiB", $2/1024}' "/proc/$pid/status"; }
rss() { awk '/VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status"; }
echo "serve ready: VmHWM $(hwm), VmRSS $(rss)"

seq -f 'user_%.0f' 1 "$MEMBERS" > "$work/a.txt"
seq -f 'other_%.0f' 1 "$MEMBERS" > "$work/b.txt"

t0=$(date +%s.%N)
"$ff" lists import spammers "$work/a.txt" --admin-url "http://$admin" 2>"$work/progress.txt"
t1=$(date +%s.%N)
echo "import of $MEMBERS: $(echo "$t1 - $t0" | bc) s; VmHWM $(hwm), VmRSS $(rss)"
if [[ ${HEAP:-0} == 1 ]]; then
	curl -sf "http://$admin/debug/pprof/heap" -o "$work/heap.pb.gz"
	go tool pprof -top -inuse_space "$work/heap.pb.gz" 2>/dev/null | head -25
fi

"$ff" lists show spammers --contains "user_$MEMBERS" --admin-url "http://$admin"
t0=$(date +%s.%N)
"$ff" lists import spammers "$work/b.txt" --replace --admin-url "http://$admin" 2>>"$work/progress.txt"
t1=$(date +%s.%N)
echo "replace with $MEMBERS others: $(echo "$t1 - $t0" | bc) s; VmHWM $(hwm), VmRSS $(rss)"
"$ff" lists show spammers --contains "user_1" --admin-url "http://$admin" || true
"$ff" lists --admin-url "http://$admin"

# A restart reads every member again before it is ready.
kill "$pid"; wait "$pid" 2>/dev/null || true
t0=$(date +%s.%N)
"$ff" serve --sdkappid 1400000000 --listen 127.0.0.1:"$(port)" --admin-listen "$admin" \
	--rules "$work/rules" --data "$work/data" --log-level warn 2>>"$work/serve.log" &
pid=$!
for _ in $(seq 600); do
	curl -sf "http://$admin/readyz" >/dev/null && break
	sleep 0.05
done
t1=$(date +%s.%N)
echo "restart to ready with $MEMBERS members: $(echo "$t1 - $t0" | bc) s; VmHWM $(hwm), VmRSS $(rss)"
"$ff" lists show spammers --contains "other_$MEMBERS" --admin-url "http://$admin"
curl -sf "http://$admin/metrics" | grep '^friendflow_list_'
echo "progress lines on stderr: $(wc -l < "$work/progress.txt") (last: $(tail -1 "$work/progress.txt"))"
