#!/usr/bin/env bash
# Writes the benchmark's rule set into DIR: 100 rules of the shapes
# operators write (equality conjuncts, `in` lists, regexes, `||` chains,
# numeric checks, rules on other commands), spread over four files.
#
# Each of the three pairs of examples/callbacks/friend_add.json
# (id -> id1, id -> id2, id -> id3; friend_add; ForceFlag 1) matches exactly
# one rule, each of a different shape; the other 97 rules match none of them
# but many are still evaluated for every event (those with no indexable
# conjunct, or whose indexed conjunct the sample satisfies). Every action is
# a `log` at level debug, below the service's info level: the jobs are
# stored and run, and nothing is printed. The rules are lint-clean (no
# warning): they name both spellings of each ClientCmd.
#
# With MATCH_ONLY=1 the rules have no actions: they are matched, and
# nothing is rendered or queued (bench/load.sh's matching-only comparison).
#
# With PREV=1 the same shapes are written on Sns.CallbackPrevFriendAdd,
# over the fields that command carries, for examples/callbacks/
# prev_friend_add.json (id -> id1, id -> id2): each target matches one
# rule with a debug log (2 jobs per callback), and one more rule denies,
# matching neither. With STATE=1 as well, that deny rule reads one
# counter and one list (`count(...) > 1e9 || From_Account in list(...)`,
# both evaluated for every target, neither true) instead of an `in [...]`
# of two accounts: bench/state.sh's comparison.
#
# usage: [MATCH_ONLY=1] [PREV=1 [STATE=1]] bench/genrules.sh DIR
set -euo pipefail
MATCH_ONLY=${MATCH_ONLY:-0}
PREV=${PREV:-0}
STATE=${STATE:-0}

dir=${1:?usage: bench/genrules.sh DIR}
mkdir -p "$dir"

# rule NAME WHEN [ON]: one rule with a debug log action. WHEN goes into a
# single-quoted YAML scalar, so it must not contain single quotes.
rule() {
	local name=$1 when=$2 on=${3:-Sns.CallbackFriendAdd}
	cat <<YAML
  - name: $name
    on: $on
    when: '$when'
YAML
	if ((MATCH_ONLY)); then
		echo "    actions: []"
		return
	fi
	cat <<YAML
    actions:
      - log:
          level: debug
          message: "$name: \${ From_Account } -> \${ To_Account }"
YAML
}

# prev_rules DIR: the PREV=1 set (see the top).
prev_rules() {
	local dir=$1 P=Sns.CallbackPrevFriendAdd i on
	{
		echo "# Equality conjuncts on the accounts (indexed)."
		echo "rules:"
		rule match-id1-equality 'From_Account == "id" && To_Account == "id1"' $P
		for i in $(seq 1 24); do
			rule "eq-$i" "From_Account == \"user$i\" && To_Account == \"peer$i\"" $P
		done
	} >"$dir/10-equality.yaml"
	{
		echo "# in lists, some together with a list on AddType."
		echo "rules:"
		rule match-id2-in 'To_Account in ["id2", "id2-alias"] && AddType in ["Add_Type_Both", "Add_Type_Single"]' $P
		for i in $(seq 1 24); do
			if ((i % 2)); then
				rule "in-$i" "To_Account in [\"vip${i}a\", \"vip${i}b\", \"vip${i}c\"]" $P
			else
				rule "in-$i" "AddType in [\"Add_Type_Both\", \"Add_Type_Single\"] && From_Account in [\"team${i}a\", \"team${i}b\"]" $P
			fi
		done
	} >"$dir/20-lists.yaml"
	{
		if ((STATE)); then
			cat <<'YAML'
# The one rule that reads state: a counter and a list.
counters:
  - name: requests_by_sender
    on: Sns.CallbackPrevFriendAdd
    key: From_Account
    window: 10m
lists:
  - name: spammers
YAML
		fi
		echo "# Regexes and || chains: no indexable conjunct, evaluated for every event."
		echo "rules:"
		echo "  - name: deny-guard"
		echo "    on: $P"
		if ((STATE)); then
			echo "    when: 'count(\"requests_by_sender\", From_Account) > 1000000000 || From_Account in list(\"spammers\")'"
		else
			echo "    when: 'From_Account in [\"spammer-1\", \"spammer-2\"]'"
		fi
		echo "    actions:"
		echo "      - deny: { code: 38001, reason: \"too many friend requests\" }"
		for i in $(seq 1 12); do
			rule "re-$i" "From_Account matches \"^bot[0-9]+-$i\$\"" $P
		done
		for i in $(seq 1 12); do
			rule "or-$i" "AddSource == \"AddSource_Type_Bot$i\" || From_Account == \"admin$i\" || To_Account matches \"^ops$i-\"" $P
		done
	} >"$dir/30-regex-or.yaml"
	{
		echo "# Numeric checks, and rules on other commands (never candidates for a friend request)."
		echo "rules:"
		for i in $(seq 1 12); do
			rule "num-$i" "ForceAddFlags == 1 && Requester_Account == \"root$i\"" $P
		done
		for i in $(seq 1 4); do
			rule "count-$i" "PairCount > $((500 + i)) || ForceAddFlags > $((1 + i))" $P
		done
		local cmds=(Sns.CallbackFriendDelete Sns.CallbackBlackListAdd Sns.CallbackPrevFriendResponse)
		for i in $(seq 1 9); do
			on=${cmds[$((i % 3))]}
			if ((i > 6)); then
				on="[Sns.CallbackFriendDelete, Sns.CallbackPrevFriendResponse]"
			fi
			rule "other-$i" "From_Account == \"id\" && PairIndex >= 0" "$on"
		done
	} >"$dir/40-numeric-other.yaml"
}

if ((PREV)); then
	prev_rules "$dir"
	exit 0
fi

{
	echo "# Equality conjuncts on the accounts (indexed)."
	echo "rules:"
	rule match-id1-equality 'From_Account == "id" && To_Account == "id1"'
	for i in $(seq 1 24); do
		rule "eq-$i" "From_Account == \"user$i\" && To_Account == \"peer$i\""
	done
} >"$dir/10-equality.yaml"

{
	echo "# in lists, some together with a list on ClientCmd."
	echo "rules:"
	rule match-id2-in 'To_Account in ["id2", "id2-alias"] && ClientCmd in ["friend_add", "FriendAdd"]'
	for i in $(seq 1 24); do
		if ((i % 2)); then
			rule "in-$i" "To_Account in [\"vip${i}a\", \"vip${i}b\", \"vip${i}c\"]"
		else
			rule "in-$i" "ClientCmd in [\"friend_add\", \"FriendAdd\", \"friend_response\", \"FriendResponse\"] && From_Account in [\"team${i}a\", \"team${i}b\"]"
		fi
	done
} >"$dir/20-lists.yaml"

{
	echo "# Regexes and || chains: no indexable conjunct, evaluated for every event."
	echo "rules:"
	rule match-id3-regex 'To_Account matches "^id3$" && ForceFlag == 1'
	for i in $(seq 1 12); do
		rule "re-$i" "From_Account matches \"^bot[0-9]+-$i\$\""
	done
	for i in $(seq 1 12); do
		rule "or-$i" "ClientCmd in [\"friend_response\", \"FriendResponse\"] || From_Account == \"admin$i\" || To_Account matches \"^ops$i-\""
	done
} >"$dir/30-regex-or.yaml"

{
	echo "# Numeric checks, and rules on other commands (never candidates for a friend add)."
	echo "rules:"
	for i in $(seq 1 12); do
		rule "num-$i" "ForceFlag == 1 && Admin_Account == \"root$i\""
	done
	for i in $(seq 1 4); do
		rule "count-$i" "PairCount > $((500 + i)) || ForceFlag > $((1 + i))"
	done
	cmds=(Sns.CallbackFriendDelete Sns.CallbackBlackListAdd Sns.CallbackBlackListDelete)
	for i in $(seq 1 9); do
		on=${cmds[$((i % 3))]}
		if ((i > 6)); then
			on="[Sns.CallbackFriendDelete, Sns.CallbackBlackListAdd]"
		fi
		# Would match the sample if it were on Sns.CallbackFriendAdd.
		rule "other-$i" "From_Account == \"id\" && PairIndex >= 0" "$on"
	done
} >"$dir/40-numeric-other.yaml"
