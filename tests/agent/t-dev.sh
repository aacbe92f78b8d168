#!/bin/bash
# keybridge dev up / dev down: a fresh environment, up again, restart
# after a crash over the same token, down; failures leave nothing half
# done; no PIN in argv, environment or logs.
. "$(dirname "$0")/lib.sh"

D=$W/dev

# --- a fresh environment
"$KB" dev up --dir "$D" >"$W/up1.out" 2>"$W/up1.err"
rc=$?
ok $([ $rc -eq 0 ]; echo $?) "dev up: exit code 0"
[ $rc -eq 0 ] || diag "$(cat "$W/up1.err")"
check "dev up: stdout is two export lines" test "$(grep -c '^export ' "$W/up1.out")" -eq 2 -a "$(wc -l <"$W/up1.out")" -eq 2
eval "$(cat "$W/up1.out")"
check "dev up: KEYBRIDGE_SOCKET points into DIR" test "$KEYBRIDGE_SOCKET" = "$D/agent.sock"
check "dev up: SOFTHSM2_CONF points into DIR" test "$SOFTHSM2_CONF" = "$D/softhsm2.conf"
check "dev up: DIR is 0700" test "$(stat -c %a "$D")" = 700
check "dev up: user.pin is 0600" test "$(stat -c %a "$D/user.pin")" = 600
check "dev up: so.pin is 0600" test "$(stat -c %a "$D/so.pin")" = 600
check "dev up: PINs are 16 hex characters" grep -qE '^[0-9a-f]{16}$' "$D/user.pin"
check "dev up: the two PINs differ" bash -c "! cmp -s '$D/user.pin' '$D/so.pin'"
check "dev up: no temporary config left" test ! -e "$D/keybridge.conf.init"
PID1=$(cat "$D/agent.sock.lock")
check "dev up: the agent runs" kill -0 "$PID1"

# --- status and token list through the agent
"$KB" status >"$W/status.txt" 2>&1
check "status: exit 0" test $? -eq 0
check "status: the dev token is ready" grep -qE '^dev +ready +yes +keybridge-dev' "$W/status.txt"
"$KB" status --json >"$W/status.json"
check "status --json: valid JSON with state ready" \
    test "$(json "$W/status.json" "j['tokens'][0]['state']")" = ready
check "status --json: logged in" test "$(json "$W/status.json" "j['tokens'][0]['logged_in']")" = True
check "status --json: version and uptime" \
    test "$(json "$W/status.json" "j['version'] != '' and j['uptime_seconds'] >= 0")" = True
check "status --json: session pool stats" \
    test "$(json "$W/status.json" "j['tokens'][0]['sessions']['max'] > 0")" = True
SERIAL=$(json "$W/status.json" "j['tokens'][0]['serial']")
"$KB" --json status >"$W/status2.json"
check "--json also works before the command" test "$(json "$W/status2.json" "j['pid']")" = "$PID1"

"$KB" token list >"$W/tokens.txt"
check "token list: exit 0" test $? -eq 0
check "token list: the dev token row" grep -qE "^dev +[0-9]+ +keybridge-dev +$SERIAL" "$W/tokens.txt"
check "token list: flags by name" grep -q CKF_TOKEN_INITIALIZED "$W/tokens.txt"
check "token list: URI" grep -q "uri: *pkcs11:.*serial=$SERIAL" "$W/tokens.txt"
"$KB" token list --json >"$W/tokens.json"
check "token list --json: configured name and URI" \
    test "$(json "$W/tokens.json" "[t['uri'] for t in j['tokens'] if t['name'] == 'dev'][0].startswith('pkcs11:')")" = True
check "token list --json: flags array" \
    test "$(json "$W/tokens.json" "'CKF_LOGIN_REQUIRED' in [t for t in j['tokens'] if t['name'] == 'dev'][0]['flags']")" = True

# --- a key in the dev vault ([vault dev], the default, 7-day retention)
"$KB" key create dev-k1 --type ec >"$W/kc.out" 2>"$W/kc.err"
rc=$?
check "dev vault: key create exits 0" test $rc -eq 0
[ $rc -eq 0 ] || diag "$(cat "$W/kc.err")"
"$KB" key show dev-k1 --json >"$W/ks.json" 2>"$W/ks.err"
check "dev vault: key show --json is an EC-HSM KeyBundle" \
    test "$(json "$W/ks.json" "j['key']['kty'] + ' ' + j['key']['crv']")" = "EC-HSM P-256"
check "dev vault: 7-day retention" test "$(json "$W/ks.json" "j['attributes']['recoverableDays']")" = 7
"$KB" key show dev-k1 >"$W/ks.txt" 2>&1
check "dev vault: key show names the version on the dev token" \
    grep -qE "^pkcs11 uri +pkcs11:.*serial=$SERIAL.*;object=dev-k1" "$W/ks.txt"
DEV_KID=$(json "$W/ks.json" "j['key']['kid']")

# --- secrets stay out of argv, the environment and the log
UPIN=$(cat "$D/user.pin")
SPIN=$(cat "$D/so.pin")
check "no PIN in ps output" bash -c "! ps -eo args | grep -v grep | grep -qe '$UPIN' -e '$SPIN'"
check "no PIN in the agent's environment" \
    bash -c "! tr '\\0' '\\n' </proc/$PID1/environ | grep -qe '$UPIN' -e '$SPIN'"
check "no PIN in agent.log" bash -c "! grep -qe '$UPIN' -e '$SPIN' '$D/agent.log'"
check "no PIN in dev up's output" bash -c "! grep -qe '$UPIN' -e '$SPIN' '$W/up1.out' '$W/up1.err'"
check "no core files: RLIMIT_CORE is 0" \
    bash -c "grep '^Max core file size' /proc/$PID1/limits | awk '{exit !(\$5 == 0 && \$6 == 0)}'"

# --- up again: says it runs, prints the same lines
"$KB" dev up --dir "$D" >"$W/up2.out" 2>"$W/up2.err"
check "dev up again: exit 0" test $? -eq 0
check "dev up again: says the agent runs" grep -q "already running (pid $PID1)" "$W/up2.err"
check "dev up again: the same lines" cmp -s "$W/up1.out" "$W/up2.out"

# --- the agent dies: dev up starts it over the same token
TOKDIR=$(ls "$D/tokens")
kill -9 "$PID1"
wait_gone "$PID1"
"$KB" dev up --dir "$D" >"$W/up3.out" 2>"$W/up3.err"
check "dev up after a crash: exit 0" test $? -eq 0
check "dev up after a crash: says it restarted" grep -q restarted "$W/up3.err"
check "dev up after a crash: the same lines" cmp -s "$W/up1.out" "$W/up3.out"
PID2=$(cat "$D/agent.sock.lock")
check "dev up after a crash: a new agent" test "$PID2" != "$PID1"
"$KB" status --json >"$W/status3.json"
check "dev up after a crash: the same token serial" \
    test "$(json "$W/status3.json" "j['tokens'][0]['serial']")" = "$SERIAL"
check "dev up after a crash: no second token" test "$(ls "$D/tokens")" = "$TOKDIR"
check "dev up after a crash: the PINs are unchanged" test "$(cat "$D/user.pin")" = "$UPIN"
"$KB" key show dev-k1 --json >"$W/ks2.json" 2>/dev/null
check "dev up after a crash: the key is still there" \
    test "$(json "$W/ks2.json" "j['key']['kid']")" = "$DEV_KID"

# --- down: process gone, DIR kept
"$KB" dev down --dir "$D" >"$W/down.out" 2>"$W/down.err"
check "dev down: exit 0" test $? -eq 0
check "dev down: the agent is gone" wait_gone "$PID2"
check "dev down: socket removed" test ! -e "$D/agent.sock"
check "dev down: DIR kept" test -f "$D/keybridge.conf" -a -f "$D/user.pin" -a -d "$D/tokens/$TOKDIR"
"$KB" status >"$W/st.out" 2>"$W/st.err"
rc=$?
check "status with the agent down: exit 4" test $rc -eq 4
check "status with the agent down: one sentence naming the socket" \
    grep -q "^keybridge: cannot reach the agent at $D/agent.sock: .*keybridge dev up" "$W/st.err"
"$KB" dev down --dir "$D" >/dev/null 2>"$W/down2.err"
check "dev down twice: exit 0" test $? -eq 0
check "dev down twice: says nothing runs" grep -q "no agent is running" "$W/down2.err"
"$KB" dev down --dir "$W/nowhere" >/dev/null 2>&1
check "dev down on a non-environment: exit 9" test $? -eq 9

# --- failures leave nothing half done
"$KB" dev up --dir "$W/bad" --module "$W/no-such-module.so" >"$W/bad.out" 2>"$W/bad.err"
rc=$?
check "dev up with a bad module: exit 5" test $rc -eq 5
check "dev up with a bad module: the sentence names it" grep -q "no-such-module.so" "$W/bad.err"
check "dev up with a bad module: no shell lines" test ! -s "$W/bad.out"
check "dev up with a bad module: DIR removed" test ! -e "$W/bad"
mkdir -m 700 "$W/bad2"
"$KB" dev up --dir "$W/bad2" --module "$W/no-such-module.so" >/dev/null 2>&1
check "dev up in an existing empty DIR: DIR kept but empty" test -d "$W/bad2" -a -z "$(ls -A "$W/bad2")"

MOCK=${KB_MOCK_MODULE:-}
if [ -n "$MOCK" ] && [ -e "$MOCK" ]; then
	# The token initialises, then the agent refuses it: dev up shows
	# the agent's own sentence and exits with the agent's code.
	KB_MOCK_TARGET=$SOFTHSM_MODULE KB_MOCK_HIDE_MECH=CKM_AES_GCM \
	    "$KB" dev up --dir "$W/nomech" --module "$MOCK" >"$W/nm.out" 2>"$W/nm.err"
	rc=$?
	check "agent refuses the token: dev up exits 8" test $rc -eq 8
	check "agent refuses the token: its sentence is shown" grep -q "^keybridged: .*CKM_AES_GCM" "$W/nm.err"
	check "agent refuses the token: no shell lines" test ! -s "$W/nm.out"
	check "agent refuses the token: no agent left" test -z "$(cat "$W/nomech/agent.sock.lock" 2>/dev/null)"
else
	skip "agent refuses the token (dev up)" "mock PKCS#11 module not built"
fi

# --- the README's way: no $KEYBRIDGED, the CLI finds the agent in the
# build tree (cli/keybridge -> ../agent/keybridged), and a failed dev up
# fails the shell line `kbenv=$(keybridge dev up ...) && eval "$kbenv"`.
if [ "$(dirname "$KB")/../agent/keybridged" -ef "$KBD" ]; then
	(unset KEYBRIDGED; PATH=/usr/bin:/bin "$KB" dev up --dir "$W/bt") >"$W/bt.out" 2>"$W/bt.err"
	check "dev up without KEYBRIDGED finds the agent in the build tree" test $? -eq 0
	check "dev up without KEYBRIDGED: the agent answers" \
	    env KEYBRIDGE_SOCKET="$W/bt/agent.sock" "$KB" status
	"$KB" dev down --dir "$W/bt" >/dev/null 2>&1
	KEYBRIDGED=/nonexistent bash -c 'kbenv=$("$1" dev up --dir "$2" 2>/dev/null) && eval "$kbenv"' _ "$KB" "$W/bt2"
	check "README line: a failed dev up fails the whole line" test $? -ne 0
else
	skip "dev up finds the agent in the build tree" "binaries not in a meson build tree"
fi

done_testing
