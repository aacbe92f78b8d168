#!/bin/bash
# keybridged start-up: every refusal exits with its documented code,
# prints one sentence naming the thing, and leaves nothing behind (no
# socket, no lock file, nothing new on the token).  Also: clean SIGTERM
# shutdown, a second instance refused, a stale socket replaced.
. "$(dirname "$0")/lib.sh"

mktoken "$W" good
mkdir -m 700 "$W/run"
S=$W/run/agent.sock
PIN=$W/user.pin
BASE=$(objects "$W")
MOCK=${KB_MOCK_MODULE:-}

# expect_fail NAME WANT-RC PATTERN CONFIG-PATH [VAR=VALUE...]
expect_fail() {
	local name=$1 want=$2 pat=$3 conf=$4 rc n
	shift 4
	env "$@" timeout 60 "$KBD" --config "$conf" >"$W/out" 2>"$W/err"
	rc=$?
	ok $([ "$rc" -eq "$want" ]; echo $?) "$name: exit code $want"
	[ "$rc" -eq "$want" ] || { diag "got $rc"; diag "$(cat "$W/err")"; }
	grep "^keybridged: " "$W/err" | sed "s/^/# MSG /"
	n=$(grep -c '^keybridged: ' "$W/err")
	ok $([ "$n" -eq 1 ]; echo $?) "$name: one sentence on stderr"
	if grep '^keybridged: ' "$W/err" | grep -qF -- "$pat"; then
		ok 0 "$name: the sentence names '$pat'"
	else
		ok 1 "$name: the sentence names '$pat'"
		diag "$(cat "$W/err")"
	fi
	check "$name: no lock file left" test ! -e "$S.lock"
	check "$name: nothing new on the token" test "$(objects "$W")" -eq "$BASE"
}

no_socket() {
	check "$1: no socket left" test ! -e "$S"
}

# --- options
"$KBD" --help >"$W/out" 2>&1
check "--help exits 0" test $? -eq 0
check "--help names --config" grep -q -- --config "$W/out"
"$KBD" --version >"$W/out" 2>&1
check "--version prints the version" grep -q '^keybridged [0-9]' "$W/out"
"$KBD" --no-such-option >/dev/null 2>&1
check "unknown option exits 2" test $? -eq 2

# --- config problems (exit 3)
expect_fail "config missing" 3 "$W/missing.conf" "$W/missing.conf"
no_socket "config missing"
expect_fail "config is a directory" 3 "$W/run" "$W/run"
no_socket "config is a directory"

printf '[agent]\nsocket = %s\n[token t\n' "$S" >"$W/syntax.conf"
expect_fail "syntax error" 3 "$W/syntax.conf:3:" "$W/syntax.conf"
no_socket "syntax error"

printf '[agent]\nsocket = %s\nfrobnicate = 1\n[token t]\nlabel = good\npin_file = %s\n' \
    "$S" "$PIN" >"$W/unknown.conf"
expect_fail "unknown key" 3 "$W/unknown.conf:3: unknown key 'frobnicate'" "$W/unknown.conf"
no_socket "unknown key"

printf '[agent]\nsocket = %s\n\n[keys v]\n' "$S" >"$W/section.conf"
expect_fail "unknown section" 3 "$W/section.conf:4: unknown section [keys]" "$W/section.conf"
no_socket "unknown section"

printf '[agent]\nsocket = %s\n[token t]\nlabel = good\n' "$S" >"$W/nopin.conf"
expect_fail "token without PIN source" 3 "$W/nopin.conf:3:" "$W/nopin.conf"

mkconf "$W/nodir.conf" "$W/nodir/agent.sock" "$SOFTHSM_MODULE" good "$PIN"
expect_fail "socket directory missing" 3 "$W/nodir" "$W/nodir.conf"
check "socket directory missing: not created" test ! -e "$W/nodir"

# --- the socket path is a regular file (exit 11), and is kept
mkconf "$W/good.conf" "$S" "$SOFTHSM_MODULE" good "$PIN"
echo "not a socket" >"$S"
expect_fail "socket path is a regular file" 11 "$S exists and is not a socket" "$W/good.conf"
check "socket path is a regular file: the file is untouched" grep -q "not a socket" "$S"
rm -f "$S"

# --- PIN file readable by the group (exit 3)
cp "$PIN" "$W/loose.pin"
chmod 640 "$W/loose.pin"
mkconf "$W/loose.conf" "$S" "$SOFTHSM_MODULE" good "$W/loose.pin"
expect_fail "PIN file readable by group" 3 "chmod 600" "$W/loose.conf"
no_socket "PIN file readable by group"

# --- module and token problems (exit 5)
mkconf "$W/nomod.conf" "$S" "$W/no-such-module.so" good "$PIN"
expect_fail "unknown module path" 5 "no-such-module.so" "$W/nomod.conf"
no_socket "unknown module path"

mkconf "$W/notok.conf" "$S" "$SOFTHSM_MODULE" no-such-label "$PIN"
expect_fail "no such token" 5 "no-such-label" "$W/notok.conf"
no_socket "no such token"

# --- wrong PIN against the real SoftHSM (exit 6)
(umask 077; echo 0000wrong >"$W/wrong.pin")
mkconf "$W/wrong.conf" "$S" "$SOFTHSM_MODULE" good "$W/wrong.pin"
expect_fail "wrong PIN" 6 "$W/wrong.conf:" "$W/wrong.conf"
no_socket "wrong PIN"
check "wrong PIN: the PIN is not in the message" bash -c "! grep -q 0000wrong '$W/err'"

# --- through the mock module: call counts and injected failures
if [ -n "$MOCK" ] && [ -e "$MOCK" ]; then
	mkconf "$W/mockwrong.conf" "$S" "$MOCK" good "$W/wrong.pin"
	rm -f "$W/count"
	expect_fail "wrong PIN (mock)" 6 "refused the PIN" "$W/mockwrong.conf" \
	    KB_MOCK_TARGET="$SOFTHSM_MODULE" KB_MOCK_COUNT_FILE="$W/count"
	grep "^keybridged: " "$W/err" | sed "s/^/# MSG /"
	n=$(grep -c '^C_Login$' "$W/count" 2>/dev/null)
	ok $([ "${n:-0}" -eq 1 ]; echo $?) "wrong PIN (mock): C_Login called exactly once"
	[ "${n:-0}" -eq 1 ] || diag "C_Login called ${n:-0} times"

	mkconf "$W/mock.conf" "$S" "$MOCK" good "$PIN"
	expect_fail "locked PIN (mock)" 7 "locked" "$W/mock.conf" \
	    KB_MOCK_TARGET="$SOFTHSM_MODULE" KB_MOCK_FAIL=C_Login=CKR_PIN_LOCKED
	no_socket "locked PIN (mock)"

	rm -f "$W/count"
	expect_fail "missing mechanism (mock)" 8 "CKM_AES_GCM" "$W/mock.conf" \
	    KB_MOCK_TARGET="$SOFTHSM_MODULE" KB_MOCK_HIDE_MECH=CKM_AES_GCM \
	    KB_MOCK_COUNT_FILE="$W/count"
	no_socket "missing mechanism (mock)"
	check "missing mechanism (mock): no login was tried" \
	    bash -c "! grep -q '^C_Login$' '$W/count' 2>/dev/null"
else
	for t in "wrong PIN counted" "locked PIN" "missing mechanism"; do
		skip "$t (mock)" "mock PKCS#11 module not built"
	done
fi

# --- a good start, a second instance, a stale socket, SIGTERM
start_agent "$W/good.conf" "$W/agent1.err"
check "agent starts" wait_socket "$S"
check "socket mode is 0600" test "$(stat -c %a "$S")" = 600
check "lock file holds the pid" test "$(cat "$S.lock")" = "$AGENT_PID"
first=$AGENT_PID

timeout 60 "$KBD" --config "$W/good.conf" >/dev/null 2>"$W/err"
rc=$?
ok $([ $rc -eq 12 ]; echo $?) "second instance: exit code 12"
check "second instance: the sentence names the pid" grep -q "pid $first" "$W/err"
check "second instance: the first one still serves" \
    curl -sf -o /dev/null --unix-socket "$S" http://localhost/keybridge/status

kill -9 "$first"
wait "$first" 2>/dev/null
check "after kill -9 the stale socket remains" test -S "$S"
start_agent "$W/good.conf" "$W/agent2.err"
check "a stale socket is replaced" wait_socket "$S"
check "the log says so" grep -q "replacing stale socket" "$W/agent2.err"

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
ok $([ $rc -eq 0 ]; echo $?) "SIGTERM: exit code 0"
check "SIGTERM: socket removed" test ! -e "$S"
check "SIGTERM: lock file removed" test ! -e "$S.lock"
check "SIGTERM: nothing new on the token" test "$(objects "$W")" -eq "$BASE"

# --- sd_notify: READY=1 to $NOTIFY_SOCKET once the socket serves
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
open(sys.argv[2], "wb").write(s.recv(4096))' "$W/notify" "$W/notify.out" &
NPID=$!
for i in $(seq 1 100); do [ -S "$W/notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$W/notify "$KBD" --config "$W/good.conf" 2>"$W/n.err" &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
check "under systemd: agent starts" wait_socket "$S"
wait "$NPID"
check "under systemd: READY=1 sent" grep -q '^READY=1$' "$W/notify.out"
check "under systemd: MAINPID is the agent" grep -q "^MAINPID=$AGENT_PID\$" "$W/notify.out"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"

# --- pin_prompt needs a terminal, and never under systemd
printf '[agent]\nsocket = %s\n[token t]\nlabel = good\npin_prompt = yes\n' "$S" >"$W/prompt.conf"
expect_fail "pin_prompt without a terminal" 3 "pin_prompt needs a terminal" "$W/prompt.conf"
no_socket "pin_prompt without a terminal"

# --- init-token
"$KBD" init-token --config "$W/good.conf" --token t --so-pin-file "$W/so.pin" 2>"$W/err"
rc=$?
check "init-token on a label that exists: exit 11" test $rc -eq 11
check "init-token on a label that exists: says so" grep -q "already exists" "$W/err"
"$KBD" init-token --config "$W/good.conf" --token nosuch --so-pin-file "$W/so.pin" 2>"$W/err"
check "init-token on an unknown token name: exit 3" test $? -eq 3
"$KBD" init-token --config "$W/good.conf" --token t 2>"$W/err"
check "init-token without --so-pin-file: exit 2" test $? -eq 2
check "nothing new on the token after init-token refusals" test "$(objects "$W")" -eq "$BASE"

# --- pin_env: the variable is wiped from the agent's environment
printf '[agent]\nsocket = %s\n[token t]\nlabel = good\npin_env = KB_TEST_PIN\n' "$S" >"$W/env.conf"
KB_TEST_PIN=$(cat "$PIN") "$KBD" --config "$W/env.conf" 2>"$W/env.err" &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
check "pin_env: agent starts" wait_socket "$S"
check "pin_env: PIN not in /proc/PID/environ" \
    bash -c "! tr '\\0' '\\n' </proc/$AGENT_PID/environ | grep -qF '$(cat "$PIN")'"
check "no core files: RLIMIT_CORE is 0" \
    bash -c "grep '^Max core file size' /proc/$AGENT_PID/limits | awk '{exit !(\$5 == 0 && \$6 == 0)}'"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"

done_testing
