#!/bin/bash
# Rotation policy, random bytes and import (issue 4, section 3) on a real
# keybridged with two vaults on two SoftHSM2 tokens, in raw HTTP
# (apicheck2.py): Key Vault's rules and answers, signatures of imported
# keys verified by the openssl command with the original keys, refused
# imports that leave no trace, no private byte in the store or the debug
# log; then the policy across a restart (store schema 3) and the role
# matrix of the new operations as another uid.
. "$(dirname "$0")/lib.sh"
need curl
need openssl

mktoken "$W" kb1
mktoken "$W" kb2 2
PD=$(mktemp -d /tmp/kbapi2.XXXXXX)
chmod 711 "$PD"
trap 'cleanup; rm -rf "$PD"' EXIT
S=$PD/agent.sock
ROLE_UID=4244
AV="api-version=7.5"

agent_up() {	# agent_up NAME
	must_start "$1" "$W/agent.conf" "$W/agent.err" wait_socket "$S"
}

agent_down() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
}

mkvaultconf "$W/agent.conf" "$S"
agent_up "keybridged starts with vaults main and locked"

# apicheck2.py's TAP lines, renumbered into this script's.
while IFS= read -r line; do
	if [[ $line =~ ^(not\ )?ok\ [0-9]+\ -\ (.*)$ ]]; then
		if [ -z "${BASH_REMATCH[1]}" ]; then ok 0 "${BASH_REMATCH[2]}"; else ok 1 "${BASH_REMATCH[2]}"; fi
	elif [[ $line == \#* ]]; then
		echo "$line"
	fi
done < <(python3 "$(dirname "$0")/apicheck2.py" --socket "$S" \
    --state "$W/state" --log "$W/agent.err" --tokens "$W/tokens" 2>&1)

req() {	# req METHOD PATH [BODY]: sets CODE and BODY
	local out
	out=$(curl -s -o - -w '\n%{http_code}' -X "$1" --unix-socket "$S" \
	    -H 'Content-Type: application/json' ${3:+--data "$3"} "http://localhost$2")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

# The policy is in the store: a restart keeps it.
POL='{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P2Y"}}'
req POST "/keys/restart-k/create?$AV" '{"kty":"oct","key_size":128}'
req PUT "/keys/restart-k/rotationpolicy?$AV" "$POL"
BEFORE=$BODY
ok "$([ "$CODE" = 200 ]; echo $?)" "PUT a policy before the restart"
agent_down
agent_up "keybridged restarts on the same store"
req GET "/keys/restart-k/rotationpolicy?$AV"
ok "$([ "$CODE" = 200 ] && [ "$BODY" = "$BEFORE" ]; echo $?)" \
    "after the restart GET gives the same policy"
ok "$([ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA user_version").fetchone()[0])' "$W/state/vaults.db")" -ge 3 ]; echo $?)" \
    "the store is at schema version 3 (policies) or later"

# Roles: Reader may read policies and draw random bytes, not write.
if [ "$(id -u)" != 0 ] || ! setpriv --reuid=$ROLE_UID --regid=$ROLE_UID --clear-groups true 2>/dev/null; then
	skip "the role matrix of policy, rng and import" "needs root (and setpriv) to act as uid $ROLE_UID"
	done_testing
fi
as() {	# as ROLE-UID METHOD PATH [BODY]: sets CODE
	CODE=$(setpriv --reuid="$1" --regid="$1" --clear-groups curl -s -o /dev/null \
	    -w '%{http_code}' -X "$2" --unix-socket "$S" -H 'Content-Type: application/json' \
	    ${4:+--data "$4"} "http://localhost$3")
}
OCT='{"key":{"kty":"oct","k":"AAECAwQFBgcICQoLDA0ODw"}}'
for role in readers contributors; do
	agent_down
	mkvaultconf "$W/agent.conf" "$S" "$role = $ROLE_UID"
	agent_up "restart with $role = $ROLE_UID"
	as $ROLE_UID GET "/keys/restart-k/rotationpolicy?$AV"
	ok "$([ "$CODE" = 200 ]; echo $?)" "$role: GET rotationpolicy is allowed ($CODE)"
	as $ROLE_UID POST "/rng?$AV" '{"count":8}'
	ok "$([ "$CODE" = 200 ]; echo $?)" "$role: POST /rng is allowed ($CODE)"
	as $ROLE_UID PUT "/keys/restart-k/rotationpolicy?$AV" "$POL"
	want=403; [ $role = contributors ] && want=200
	ok "$([ "$CODE" = $want ]; echo $?)" "$role: PUT rotationpolicy gives $want ($CODE)"
	as $ROLE_UID PUT "/keys/role-imp-$role?$AV" "$OCT"
	ok "$([ "$CODE" = $want ]; echo $?)" "$role: import gives $want ($CODE)"
	as $ROLE_UID POST "/vaults/locked/rng?$AV" '{"count":8}'
	ok "$([ "$CODE" = 403 ]; echo $?)" "$role on main only: /vaults/locked/rng is 403 ($CODE)"
done
req GET "/keybridge/audit?maxresults=1000"
ok "$(python3 -c '
import json, sys
j = json.loads(sys.argv[1])
ops = {r["op"] for r in j["value"] if r["uid"] == int(sys.argv[2]) and r["result"] == "denied"}
sys.exit(0 if {"rotation-policy-update", "import", "rng"} <= ops else 1)' "$BODY" $ROLE_UID; echo $?)" \
    "the denials are audited as rotation-policy-update, import and rng"
done_testing
