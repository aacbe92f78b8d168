#!/bin/bash
# A vault larger than one token listing used to hold (4,096 objects): the
# agent's start-up check of every version against the token lists the
# token once and pairs the halves of each key pair by binary search, so a
# restart over thousands of keys takes seconds, not an hour of per-version
# searches; and a SIGTERM during that start-up work stops the agent
# cleanly instead of waiting for it to end.
. "$(dirname "$0")/lib.sh"
need curl

NEC=${KB_SCALE_EC:-2100}     # P-256 pairs: 4,200 objects
NOCT=${KB_SCALE_OCT:-60}
S=$W/agent.sock

mktoken "$W" kb1
cat >"$W/agent.conf" <<CONF
[agent]
socket = $S
state_dir = $W/state
log_level = debug

[token t1]
module = $SOFTHSM_MODULE
label = kb1
pin_file = $W/user.pin

[vault main]
token = t1
default = true
retention_days = 7
CONF

# wait_ready ERRFILE: "ready on" in the log (120 s at most: a sanitizer
# build lists 4,200 objects slowly).
wait_ready() {
	local i
	for i in $(seq 1 1200); do
		grep -q "ready on" "$1" 2>/dev/null && return 0
		gone "$AGENT_PID" && return 1
		sleep 0.1
	done
	return 1
}

must_start "agent starts" "$W/agent.conf" "$W/a1.err" wait_ready "$W/a1.err"

# Two connections create the keys (one python3 process, keep-alive).
python3 - "$S" "$NEC" "$NOCT" >"$W/made" 2>"$W/made.err" <<'PY'
import http.client, json, socket, sys, threading
path, nec, noct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class UC(http.client.HTTPConnection):
    def __init__(self): super().__init__("localhost")
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
jobs = [("ec%05d" % i, {"kty": "EC", "crv": "P-256"}) for i in range(nec)]
jobs += [("oct%05d" % i, {"kty": "oct-HSM", "key_size": 256}) for i in range(noct)]
made, lock = [0], threading.Lock()
def work(part):
    c = UC()
    for name, body in part:
        c.request("POST", "/keys/%s/create?api-version=7.5" % name,
                  json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse(); d = r.read()
        if r.status != 200:
            print(name, r.status, d[:200], file=sys.stderr); return
        with lock: made[0] += 1
ts = [threading.Thread(target=work, args=(jobs[k::2],)) for k in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print(made[0])
PY
check "$((NEC + NOCT)) keys created through the API ($NEC P-256 pairs)" \
    test "$(cat "$W/made")" = "$((NEC + NOCT))"
[ -s "$W/made.err" ] && diag "$(head -n 5 "$W/made.err")"
OBJ=$(objects "$W")
check "the token holds more than 4,096 objects ($OBJ)" test "$OBJ" -gt 4096

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
check "agent stops on SIGTERM" test $? -eq 0

# A SIGTERM while the vault is being checked against the token: the
# start-up work stops between two keys and the agent exits 0 without
# serving.  The window is the check itself (a second or more here); if
# the agent was faster than the signal, try again.
cut=1
for attempt in 1 2 3; do
	: >"$W/a2.err"
	start_agent "$W/agent.conf" "$W/a2.err"
	for i in $(seq 1 2400); do
		grep -q "token 't1' ready" "$W/a2.err" && break
		gone "$AGENT_PID" && break
		sleep 0.05
	done
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	rc=$?
	if grep -q "signal during start-up" "$W/a2.err"; then
		cut=0
		break
	fi
	diag "attempt $attempt: the agent was ready before the signal (rc $rc)"
done
check "SIGTERM during the start-up check: stops before serving" test "$cut" -eq 0
check "  and exits 0" test "$rc" -eq 0
check "  and never served" eval '! grep -q "ready on" "$W/a2.err"'
check "  and removed nothing" test "$(objects "$W")" -eq "$OBJ"

must_start "agent restarts over $OBJ objects" "$W/agent.conf" "$W/a3.err" \
    wait_ready "$W/a3.err"
check "start-up listed the token in one go (no per-version fallback)" \
    eval '! grep -q "cannot list the token" "$W/a3.err"'
check "start-up found every version's object, both halves of each pair" \
    eval '! grep -qE "has no object on the token|without key material" "$W/a3.err"'
check "start-up changed no usage flags" \
    eval '! grep -q "usage flags of" "$W/a3.err"'

"$KB" --socket "$S" key list --json >"$W/list.json" 2>"$W/list.err"
check "key list shows all $((NEC + NOCT)) keys" \
    test "$(json "$W/list.json" 'len(j) if isinstance(j, list) else len(j["value"])')" \
    -eq "$((NEC + NOCT))"

# The last pair and the last AES key still work after the restart.
DIG=$(printf 'scale' | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=')
code=$(curl -s -o "$W/sign.json" -w '%{http_code}' --unix-socket "$S" \
    -H 'Content-Type: application/json' \
    -d "{\"alg\":\"ES256\",\"value\":\"$DIG\"}" \
    "http://localhost/keys/ec$(printf %05d $((NEC - 1)))/sign?api-version=7.5")
check "ES256 sign with the last pair: 200" test "$code" = 200
code=$(curl -s -o "$W/enc.json" -w '%{http_code}' --unix-socket "$S" \
    -H 'Content-Type: application/json' \
    -d '{"alg":"A256KW","value":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}' \
    "http://localhost/keys/oct$(printf %05d $((NOCT - 1)))/wrapkey?api-version=7.5")
check "A256KW wrap with the last AES key: 200" test "$code" = 200

kill -TERM "$AGENT_PID"
wait "$AGENT_PID"
check "agent stops on SIGTERM" test $? -eq 0
done_testing
