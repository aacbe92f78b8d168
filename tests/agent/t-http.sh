#!/bin/bash
# The agent's HTTP API on its socket: known and unknown paths, methods,
# body caps, Key Vault error bodies, and peer credentials (403).
. "$(dirname "$0")/lib.sh"
need curl

mktoken "$W" http
# A socket other users can reach, so the peer-credential check is what
# refuses them: a traversable directory and socket_mode = 0666.
P=$(mktemp -d /tmp/kbpeer.XXXXXX)
chmod 711 "$P"
trap 'cleanup; rm -rf "$P"' EXIT
S=$P/agent.sock
mkconf "$W/agent.conf" "$S" "$SOFTHSM_MODULE" http "$W/user.pin" "socket_mode = 0666"
must_start "agent starts" "$W/agent.conf" "$W/agent.err" wait_socket "$S"

# req METHOD PATH [CURL-ARGS...]: body into $W/body, status into $CODE
req() {
	local m=$1 p=$2
	shift 2
	CODE=$(curl -s -o "$W/body" -w '%{http_code}' -X "$m" --unix-socket "$S" "$@" "http://localhost$p")
}

req GET /keybridge/status
check "GET /keybridge/status: 200" test "$CODE" = 200
check "GET /keybridge/status: JSON with the token" test "$(json "$W/body" "j['tokens'][0]['label']")" = http

req GET /keybridge/tokens
check "GET /keybridge/tokens: 200" test "$CODE" = 200
check "GET /keybridge/tokens: the configured name" \
    test "$(json "$W/body" "[t['name'] for t in j['tokens'] if t.get('label') == 'http'][0]")" = t

req GET /nothing/here
check "unknown path: 404" test "$CODE" = 404
check "unknown path: Key Vault error body" \
    test "$(json "$W/body" "j['error']['code'] + '|' + str(len(j['error']['message']) > 0)")" = "NotFound|True"

req DELETE /keybridge/status
check "wrong method: 405" test "$CODE" = 405
check "wrong method: Key Vault error body" test "$(json "$W/body" "j['error']['code']")" = MethodNotAllowed
curl -s -D "$W/hdr" -o /dev/null -X PUT --unix-socket "$S" http://localhost/keybridge/tokens
check "wrong method: Allow header" grep -qi '^Allow: GET' "$W/hdr"

head -c $((2 * 1024 * 1024)) /dev/zero >"$W/big"
req POST /keybridge/status --data-binary @"$W/big"
check "oversized body (Content-Length): 413" test "$CODE" = 413
check "oversized body: Key Vault error body" test "$(json "$W/body" "j['error']['code']")" = RequestTooLarge
req POST /keybridge/status -H 'Transfer-Encoding: chunked' --data-binary @"$W/big"
check "oversized body (chunked): 413" test "$CODE" = 413
req GET /keybridge/status
check "the agent still serves after refusals" test "$CODE" = 200

# --- peer credentials
if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
	CODE=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	    curl -s -o - -w '\n%{http_code}' --unix-socket "$S" http://localhost/keybridge/status)
	check "another uid: 403" test "$(tail -n1 <<<"$CODE")" = 403
	head -n1 <<<"$CODE" >"$W/body"
	check "another uid: Key Vault Forbidden body" test "$(json "$W/body" "j['error']['code']")" = Forbidden
	check "another uid: the message names the uid" grep -q 65534 "$W/body"
	if setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$KB"; then
		setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/ \
		    "$KB" --socket "$S" status >/dev/null 2>"$W/e"
		rc=$?
		check "another uid: keybridge status exits 10" test $rc -eq 10
		[ $rc -eq 10 ] || diag "$(cat "$W/e")"
	else
		skip "another uid: keybridge status exits 10" "$KB not executable by uid 65534"
	fi
	check "the agent logs the refusal" grep -q "refused GET /keybridge/status from uid 65534" "$W/agent.err"
else
	skip "another uid: 403" "setpriv cannot switch to uid 65534 here"
fi
req GET /keybridge/status
check "root still gets 200" test "$CODE" = 200

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
check "SIGTERM: exit 0" test $? -eq 0
check "SIGTERM: socket removed" test ! -e "$S"

# --- connection limit and idle timeout (libmicrohttpd's, on our socket)
mkconf "$W/limits.conf" "$S" "$SOFTHSM_MODULE" http "$W/user.pin" \
    "$(printf 'max_connections = 2\nthreads = 1\nrequest_timeout = 1')"
start_agent "$W/limits.conf" "$W/limits.err"
check "limits: agent starts" wait_socket "$S"
python3 - "$S" >"$W/limits.out" <<'PY'
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    return s
a, b = conn(), conn()
time.sleep(0.3)
c = conn()
c.settimeout(3)
try:
    third = c.recv(1) == b""
except socket.timeout:
    third = False
a.settimeout(10)
t0 = time.time()
idle = a.recv(1) == b""
print("third-closed" if third else "third-open", "idle-closed" if idle else "idle-open", int(time.time() - t0 < 5))
PY
check "limits: a third connection over max_connections = 2 is closed" grep -q third-closed "$W/limits.out"
check "limits: an idle connection is closed after request_timeout" grep -q "idle-closed 1" "$W/limits.out"
req GET /keybridge/status
check "limits: the agent serves again afterwards" test "$CODE" = 200
kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
mkconf "$W/threads.conf" "$S" "$SOFTHSM_MODULE" http "$W/user.pin" \
    "$(printf 'max_connections = 2\nthreads = 4')"
"$KBD" --config "$W/threads.conf" 2>"$W/err"
check "threads > max_connections: exit 3" test $? -eq 3

done_testing
