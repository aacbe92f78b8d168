#!/bin/bash
# A token with isolate = true (docs/config.md): the module runs in
# keybridge-p11host, a child of keybridged, reached over p11-kit's RPC.
# The vault works as in-process (keys made, used, listed, seen by
# pkcs11-tool loading the module itself); what Debian 12's p11-kit cannot
# carry (AES-GCM, AES key wrap) is refused with a sentence that says why,
# or works on a newer p11-kit; the host goes with the agent, however the
# agent ends; a dead host turns requests into 503s naming it, never a
# crash.
. "$(dirname "$0")/lib.sh"
need curl
need openssl
need pkcs11-tool
[ -r /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so ] ||
    [ -n "$(find /usr/lib -name p11-kit-client.so 2>/dev/null | head -n1)" ] || {
	echo "1..0 # SKIP no p11-kit-client.so (package p11-kit-modules)"; exit 0; }

mktoken "$W" kbiso
S=$W/agent.sock
AV="api-version=7.5"
mkconf "$W/agent.conf" "$S" "$SOFTHSM_MODULE" kbiso "$W/user.pin"
cat >>"$W/agent.conf" <<CONF
isolate = true

[vault main]
token = t
default = true
retention_days = 7
CONF

req() {	# req METHOD PATH [BODY]: sets CODE and BODY
	local out
	out=$(curl -s -o - -w '\n%{http_code}' -X "$1" --unix-socket "$S" \
	    -H 'Content-Type: application/json' ${3:+--data "$3"} "http://localhost$2")
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}
jbody() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$BODY" "$1"; }
hosts_of() {	# hosts_of PID: pids of its keybridge-p11host children
	local p
	for p in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$1" ] || continue
		case $(readlink "$p/exe" 2>/dev/null) in
		*/keybridge-p11host) echo "${p#/proc/}" ;;
		esac
	done
}

must_start "keybridged starts with an isolated token" "$W/agent.conf" \
    "$W/agent.err" wait_socket "$S"
HOST=$(hosts_of "$AGENT_PID")
check "one keybridge-p11host runs as the agent's child" test -n "$HOST" -a "$(echo "$HOST" | wc -w)" = 1
check "the host's command line holds the module path and nothing else" \
    test "$(tr '\0' '\n' <"/proc/$HOST/cmdline" | sed 1d)" = "$(readlink -f "$SOFTHSM_MODULE")"
check "the agent itself has not loaded SoftHSM" \
    bash -c "! grep -q libsofthsm2 /proc/$AGENT_PID/maps"
check "the host has" grep -q libsofthsm2 "/proc/$HOST/maps"
check "the host's socket is gone from the state directory once connected" \
    test -z "$(find "$W/state/p11host" -type s)"

# Keys and signatures through the host.
req POST "/keys/iso-ec/create?$AV" '{"kty":"EC","crv":"P-256"}'
ok "$([ "$CODE" = 200 ]; echo $?)" "create an EC key"
printf 'isolated' >"$W/msg"
DG=$(openssl dgst -sha256 -binary "$W/msg" | base64 -w0 | tr '+/' '-_' | tr -d '=')
req POST "/keys/iso-ec/sign?$AV" "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
SIG=$(jbody "j['value']")
ok "$([ "$CODE" = 200 ] && [ -n "$SIG" ]; echo $?)" "ES256 sign"
req POST "/keys/iso-ec/verify?$AV" "{\"alg\":\"ES256\",\"digest\":\"$DG\",\"value\":\"$SIG\"}"
ok "$([ "$CODE" = 200 ] && [ "$(jbody "j['value']")" = True ]; echo $?)" "ES256 verify"
req POST "/keys/iso-rsa/create?$AV" '{"kty":"RSA","key_size":2048}'
ok "$([ "$CODE" = 200 ]; echo $?)" "create an RSA key"
req POST "/keys/iso-rsa/sign?$AV" "{\"alg\":\"PS256\",\"value\":\"$DG\"}"
ok "$([ "$CODE" = 200 ]; echo $?)" "PS256 sign"
req POST "/keys/iso-aes/create?$AV" '{"kty":"oct-HSM","key_size":256}'
ok "$([ "$CODE" = 200 ]; echo $?)" "create an AES key"
req GET "/keys?$AV"
ok "$([ "$CODE" = 200 ] && [ "$(jbody "len(j['value'])")" = 3 ]; echo $?)" "list: three keys"
check "pkcs11-tool, loading SoftHSM itself, sees the keys' objects" \
    bash -c "KB_T_PIN=\$(cat '$W/user.pin') pkcs11-tool --module '$SOFTHSM_MODULE' --token-label kbiso --login --pin env:KB_T_PIN -O 2>/dev/null | grep -c 'label: *iso-' | grep -qx 5"

# AES-GCM and AES-KW: refused with the reason on p11-kit 0.24, else work.
req POST "/keys/iso-aes/encrypt?$AV" '{"alg":"A256GCM","value":"aGVsbG8"}'
if [ "$CODE" = 200 ]; then
	ok 0 "A256GCM works (this p11-kit carries AES-GCM)"
else
	ok "$([ "$CODE" = 400 ] && jbody "j['error']['message']" | grep -q 'isolated'; echo $?)" \
	    "A256GCM refused with a 400 that names the isolation"
	check "the agent warned about it at start" grep -q "requests that need it will be refused" "$W/agent.err"
fi

# The host goes with the agent, even on SIGKILL.
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "SIGKILL of the agent: the host exits too" wait_gone "$HOST"
rm -f "$S"
start_agent "$W/agent.conf" "$W/agent.err"
wait_socket "$S"
ok $? "the agent restarts over the same token"
HOST=$(hosts_of "$AGENT_PID")
req POST "/keys/iso-ec/sign?$AV" "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
ok "$([ "$CODE" = 200 ]; echo $?)" "after the restart the key still signs"

# A host that outlives its agent (stopped here; in life, finishing a call)
# keeps the next agent's host off the token until it is gone.
OLD=$HOST
kill -STOP "$OLD"
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
rm -f "$S"
start_agent "$W/agent.conf" "$W/agent2.err"
wait "$AGENT_PID"
ST=$?
ok "$([ "$ST" != 0 ] && grep -q 'another keybridge-p11host still serves' "$W/agent2.err"; echo $?)" \
    "an old host still alive: the next agent does not start (exit $ST) and says why"
kill -CONT "$OLD"
check "the old host, let go, exits" wait_gone "$OLD"
start_agent "$W/agent.conf" "$W/agent.err"
wait_socket "$S"
ok $? "then the agent starts"
HOST=$(hosts_of "$AGENT_PID")

# A dead host: a 503 naming it; the agent stays up and answers.
kill -KILL "$HOST"
wait_gone "$HOST"
req POST "/keys/iso-ec/sign?$AV" "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
ok "$([ "$CODE" = 503 ] && jbody "j['error']['message']" | grep -q 'module host'; echo $?)" \
    "host killed: sign answers 503 naming the module host"
req GET "/keys/iso-ec?$AV"
ok "$([ "$CODE" = 200 ] && [ -n "$(jbody "j['key']['x']")" ]; echo $?)" \
    "host killed: a get still answers with the public key, from the store"
check "host killed: the agent is still running" test -e "/proc/$AGENT_PID"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
ok $? "host killed: SIGTERM still stops the agent cleanly"

# A module stuck in a call (the mock's C_Sign=HANG, in the host): after
# call_timeout the watchdog kills the host; the agent answers and goes on.
if [ -n "${KB_MOCK_MODULE:-}" ]; then
	mkconf "$W/hang.conf" "$S" "$KB_MOCK_MODULE" kbiso "$W/user.pin"
	cat >>"$W/hang.conf" <<CONF
isolate = true
call_timeout = 2

[vault main]
token = t
default = true
retention_days = 7
CONF
	rm -f "$S"
	export KB_MOCK_TARGET="$SOFTHSM_MODULE" KB_MOCK_FAIL=C_Sign=HANG
	must_start "a module that hangs in C_Sign, isolated, call_timeout = 2: the agent starts" \
	    "$W/hang.conf" "$W/hang.err" wait_socket "$S"
	unset KB_MOCK_TARGET KB_MOCK_FAIL
	HOST=$(hosts_of "$AGENT_PID")
	t0=$(date +%s.%N)
	req POST "/keys/iso-ec/sign?$AV" "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
	secs=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$(date +%s.%N)" "$t0")
	diag "the hung sign took $secs s: $BODY"
	ok "$([ "$CODE" = 503 ] && jbody "j['error']['message']" | grep -q 'did not answer a call within 2 s'; echo $?)" \
	    "a hung sign answers 503: the host did not answer within 2 s and was stopped"
	check "it answered after the timeout, not long after ($secs s)" \
	    python3 -c "import sys; sys.exit(not 2 <= float('$secs') <= 10)"
	check "the stuck host is gone" wait_gone "$HOST"
	check "the agent logged why" grep -q "did not answer a call within 2 s: stopped" "$W/hang.err"
	t0=$(date +%s)
	req POST "/keys/iso-ec/sign?$AV" "{\"alg\":\"ES256\",\"value\":\"$DG\"}"
	ok "$([ "$CODE" = 503 ] && [ $(($(date +%s) - t0)) -le 1 ]; echo $?)" \
	    "the next sign answers 503 at once"
	req GET "/keys/iso-ec?$AV"
	ok "$([ "$CODE" = 200 ]; echo $?)" "a get still answers, from the store"
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	ok $? "SIGTERM stops the agent cleanly"
else
	skip "a module that hangs in C_Sign (isolated)" "mock PKCS#11 module not built"
fi

done_testing
