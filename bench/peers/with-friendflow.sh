#!/usr/bin/env bash
# with-friendflow.sh FRIENDFLOW_BIN [OUT_DIR] (bench/peers/run.sh builds and calls it): one interleaved anchors.sh run of every anchor whose binary
# is given (RAW_BIN required; EXPR_BIN, WEBHOOK_BIN, BENTHOS_BIN optional) plus two friendflow targets:
#   friendflow        100 rules (77 equality, 20 prefix/list, 3 matching one pair each), each match a
#                     debug-level log action: 3 durable jobs per callback, stored before OK, then run
#   friendflow-match  the same 100 rules with no actions (receive, verify, decode, match, reply)
set -euo pipefail
ff=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen() { # gen DIR WITH_ACTIONS
  mkdir -p "$1"
  {
    echo "rules:"
    act() { if [ "$2" = 1 ]; then printf '    actions:\n      - log: {message: "%s", level: debug}\n' "$1"; else printf '    actions: []\n'; fi; }
    for i in $(seq 1 77); do printf '  - name: filler-%d\n    when: To_Account == "nobody_%d" && ForceFlag == 1\n' "$i" "$i"; act "filler $i" "$2"; done
    for i in $(seq 1 20); do printf '  - name: prefix-%d\n    when: To_Account startsWith "vip_%d_" || From_Account in ["spam_%d", "bot_%d"]\n' "$i" "$i" "$i" "$i"; act "prefix $i" "$2"; done
    for t in id1 id2 id3; do printf '  - name: pair-%s\n    when: To_Account == "%s" && ClientCmd == "friend_add"\n' "$t" "$t"; act 'matched ${ To_Account }' "$2"; done
  } >"$1/bench.yaml"
  "$ff" lint "$1" >/dev/null
}
gen "$work/rules" 1
gen "$work/rules-match" 0
mkdir -p "$work/data" "$work/data-match"
common="--callback-path /callback --sdkappid 1400000000 --log-level error"
export EXTRA_TARGETS="friendflow|$ff serve --listen {ADDR} --admin-listen 127.0.0.1:19190 --rules $work/rules --data $work/data $common
friendflow-match|$ff serve --listen {ADDR} --admin-listen 127.0.0.1:19191 --rules $work/rules-match --data $work/data-match $common"
export OUT_DIR=${2:-$work/out}
"$here/anchors.sh"
