# lib.sh: helpers for keybridge's agent tests (bash, TAP output).
#
# Environment from meson: KEYBRIDGE_BIN, KEYBRIDGED_BIN, SOFTHSM_MODULE,
# and KB_MOCK_MODULE when the mock PKCS#11 module is built.
# Every test script gets its own directory $W (removed on exit) and
# every agent it started is killed on exit, whatever happens.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/../lib/certs.sh"

T=0
FAILED=0
W=$(mktemp -d /tmp/kbtest.XXXXXX) || { echo "1..0 # SKIP mktemp failed"; exit 0; }
PIDS=()

cleanup() {
	local f p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	# Agents started by `keybridge dev up` live on after the CLI: their
	# pid is in the lock file next to their socket.
	while IFS= read -r f; do
		p=$(cat "$f" 2>/dev/null)
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	done < <(find "$W" -name '*.lock' 2>/dev/null)
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

KB=${KEYBRIDGE_BIN:?KEYBRIDGE_BIN not set}
KBD=${KEYBRIDGED_BIN:?KEYBRIDGED_BIN not set}
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
export KEYBRIDGED=$KBD
unset KEYBRIDGE_SOCKET KEYBRIDGE_CONFIG NOTIFY_SOCKET
export HOME=$W/home
mkdir -p "$HOME"

ok() {	# ok STATUS NAME
	T=$((T + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T - $2"
	else
		echo "not ok $T - $2"
		FAILED=$((FAILED + 1))
	fi
}

check() {	# check NAME COMMAND... (its output goes to stderr, not into TAP)
	local name=$1
	shift
	if "$@" >&2; then ok 0 "$name"; else ok 1 "$name"; fi
}

skip() {	# skip NAME REASON
	T=$((T + 1))
	echo "ok $T - $1 # SKIP $2"
}

diag() {
	sed 's/^/# /' <<<"$*"
}

done_testing() {
	echo "1..$T"
	[ "$FAILED" -eq 0 ]
	exit $?
}

need() {	# skip the whole script if a tool is missing
	command -v "$1" >/dev/null 2>&1 || { echo "1..0 # SKIP $1 not installed"; exit 0; }
}

need softhsm2-util
need python3
[ -r "$SOFTHSM_MODULE" ] || { echo "1..0 # SKIP no SoftHSM2 module at $SOFTHSM_MODULE"; exit 0; }

# mktoken DIR LABEL [N]: a SoftHSM2 token in DIR/tokens with DIR/userN.pin
# and DIR/soN.pin (0600); exports SOFTHSM2_CONF.  N (e.g. 2) makes a
# further token in the same store.
mktoken() {
	local d=$1 label=$2 n=${3:-}
	mkdir -p "$d/tokens"
	chmod 700 "$d"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	    "$d" >"$d/softhsm2.conf"
	export SOFTHSM2_CONF=$d/softhsm2.conf
	# One SO PIN for all tokens of DIR: backupkeys takes one.
	(umask 077
	 head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/user$n.pin"
	 if [ -n "$n" ] && [ -f "$d/so.pin" ]; then cp "$d/so.pin" "$d/so$n.pin"
	 else head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/so$n.pin"; fi)
	softhsm2-util --init-token --free --label "$label" \
	    --so-pin "$(cat "$d/so$n.pin")" --pin "$(cat "$d/user$n.pin")" >/dev/null
}

# backupkeys CONFIG [--token NAME]...: one shared pair of backup keys on
# the config's tokens (all by default), as an operator does before start.
backupkeys() {
	local conf=$1
	shift
	"$KBD" backup-keys --config "$conf" --so-pin-file "$W/so.pin" "$@"
}

# mkvaultconf FILE SOCKET [LINES-FOR-VAULT-MAIN]: an agent config with two
# vaults on the tokens kb1 and kb2 (mktoken DIR kb1; mktoken DIR kb2 2):
# "main" (default, 7-day retention) and "locked" (purge protection).  The
# socket is 0666: the tests give other uids roles, the roles decide.
mkvaultconf() {
	cat >"$1" <<CONF
[agent]
socket = $2
state_dir = $W/state
log_level = debug
socket_mode = 0666

[token t1]
module = $SOFTHSM_MODULE
label = kb1
pin_file = $W/user.pin

[token t2]
module = $SOFTHSM_MODULE
label = kb2
pin_file = $W/user2.pin

[vault main]
token = t1
default = true
retention_days = 7
${3:-}

[vault locked]
token = t2
retention_days = 7
purge_protection = true
CONF
}

# objects DIR: number of objects on SoftHSM tokens under DIR/tokens.
objects() {
	find "$1/tokens" -name '*.object' | wc -l
}

# lock_store DB: another process takes DB's write lock (BEGIN EXCLUSIVE)
# and holds it until unlock_store, so no timing decides what the agent
# meets; 0 once the lock is held, 1 if it was not within 60 s.
lock_store() {
	rm -f "$W/store.locked" "$W/store.release"
	python3 - "$1" "$W/store.locked" "$W/store.release" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
for _ in range(1200):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
db.execute("ROLLBACK")
PY
	STORE_LOCKER=$!
	for _ in $(seq 1 600); do
		[ -e "$W/store.locked" ] && return 0
		sleep 0.1
	done
	return 1
}
unlock_store() {
	: >"$W/store.release"
	wait "$STORE_LOCKER"
}

# mkconf FILE SOCKET MODULE LABEL PINFILE [EXTRA-AGENT-LINES]
mkconf() {
	cat >"$1" <<CONF
# written by an agent test
[agent]
socket = $2
state_dir = $(dirname "$1")/state
log_level = debug
${6:-}

[token t]
module = $3
label = $4
pin_file = $5
CONF
}

# wait_socket PATH: until the agent answers (20 s at most).
wait_socket() {
	local i
	for i in $(seq 1 400); do
		if [ -S "$1" ] && curl -s -o /dev/null --max-time 2 \
		    --unix-socket "$1" http://localhost/keybridge/status; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# mkremote: what a second agent B needs to play the Azure vault
# "kb2.vault.azure.net" over HTTPS (t-remote.sh, t-wipe.sh): a CA made
# with openssl(1) ($TLS/ca.pem) and B's certificate from it, token kbb
# (user2.pin), the bearer tokens $T_ADMIN and $T_READER ($W/admin.token,
# $W/reader.token) and $B/agent.conf with vault "main".  Start B, wait
# for $B/agent.sock, then remote_url sets BURL, BPORT and RURL.
mkremote() {
	B=$W/b; TLS=$W/tls
	mkdir -p "$B" "$TLS"
	mktoken "$W" kbb 2
	mkcerts "$TLS" "t-remote CA" kb2.vault.azure.net DNS:kb2.vault.azure.net,IP:127.0.0.1
	T_ADMIN=$(tok); T_READER=$(tok)
	(umask 077; printf '%s' "$T_ADMIN" >"$W/admin.token"
	 printf '%s' "$T_READER" >"$W/reader.token")
	cat >"$B/agent.conf" <<CONF
[agent]
socket = $B/agent.sock
state_dir = $B/state
log_level = debug
https_listen = 127.0.0.1:0
https_cert = $TLS/srv.pem
https_key = $TLS/srv.key

[token kb]
label = kbb
pin_file = $W/user2.pin

[vault main]
token = kb
retention_days = 7
administrators = principal:admin
readers = principal:reader

[principal admin]
token_sha256 = $(sha "$T_ADMIN")

[principal reader]
token_sha256 = $(sha "$T_READER")
CONF
}

remote_url() {
	curl -s --unix-socket "$B/agent.sock" http://l/keybridge/status >"$W/bstatus.json"
	BURL=$(json "$W/bstatus.json" "j['https']")
	BPORT=${BURL##*:}
	RURL=https://kb2.vault.azure.net:$BPORT
	diag "agent B serves $BURL, reached as $RURL"
}

tok() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# start_agent CONFIG ERRFILE: keybridged in the background; sets AGENT_PID.
start_agent() {
	"$KBD" --config "$1" 2>"$2" &
	AGENT_PID=$!
	PIDS+=("$AGENT_PID")
}

# must_start NAME CONFIG ERRFILE WAIT-COMMAND...: start_agent, then run
# WAIT-COMMAND (wait_socket SOCKET, say); one TAP line NAME.  An agent that
# does not come up ends the script, with the end of its log as diagnostics.
must_start() {
	local name=$1 conf=$2 err=$3
	shift 3
	start_agent "$conf" "$err"
	if ! "$@"; then
		diag "$(tail -n 20 "$err")"
		ok 1 "$name"
		done_testing
	fi
	ok 0 "$name"
}

# gone PID: the process has exited (or is a zombie nobody reaped).
gone() {
	local st
	[ -e "/proc/$1" ] || return 0
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

wait_gone() {
	local i
	for i in $(seq 1 400); do
		gone "$1" && return 0
		sleep 0.05
	done
	return 1
}

# json FILE EXPR: evaluate a Python expression on the JSON in FILE (as j).
json() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
