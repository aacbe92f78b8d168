#!/bin/bash
# Crash consistency (issue 3, point 5; issue 4's restore): SIGKILL
# keybridged at random points during create, rotate, update, delete,
# recover, purge, backup and restore (at least 200 kills), restart it, and check after every restart that acknowledged
# operations are there, that the store and the token agree object for
# object, that soft-deleted keys have no usage flags on the token, and
# that the agent's start-up log names every version without its object.
# SoftHSM's file backend tears object files and token.object when killed
# while writing them: crashcheck.py tolerates that in three exact cases,
# each printed as "# softhsm torn write: ..." (see its docstring).  The
# work is done by crashcheck.py (requests through curl on the socket, the
# store read with sqlite3 read-only, the token with pkcs11-tool).
#
# KB_CRASH_KILLS (default 210), KB_CRASH_SEED, KB_CRASH_DELAY_SCALE and
# KB_CRASH_KEEP (below) tune a run by hand.  --isolate (or
# KB_CRASH_ISOLATE=1) runs the token's module isolated (keybridge-p11host,
# docs/config.md), without backups (AES key wrap does not cross Debian
# 12's p11-kit RPC): the host dies with each killed agent, and the next
# agent starts once it is gone.
if [ "${1:-}" = --isolate ]; then
	KB_CRASH_ISOLATE=1
	KB_CRASH_KILLS=${KB_CRASH_KILLS:-210}
fi
. "$(dirname "$0")/lib.sh"
need curl
need pkcs11-tool
if [ "${KB_CRASH_ISOLATE:-}" = 1 ]; then
	[ -n "$(find /usr/lib -name p11-kit-client.so 2>/dev/null | head -n1)" ] || {
		echo "1..0 # SKIP no p11-kit-client.so (package p11-kit-modules)"; exit 0; }
fi

mktoken "$W" kbcrash
cat >"$W/agent.conf" <<CONF
# written by t-crash.sh
[agent]
socket = $W/agent.sock
state_dir = $W/state
log_level = info

[token t]
module = $SOFTHSM_MODULE
label = kbcrash
pin_file = $W/user.pin
$([ "${KB_CRASH_ISOLATE:-}" = 1 ] && echo "isolate = true")

[vault crash]
token = t
default = true
retention_days = 7
CONF
# Backup keys first, as an operator does: keys are then backed up and
# restored (after a purge) between the kills.
backupkeys "$W/agent.conf" >/dev/null

args=(--kbd "$KBD" --conf "$W/agent.conf" --sock "$W/agent.sock"
      --db "$W/state/vaults.db" --module "$SOFTHSM_MODULE" --token-label kbcrash
      --pin-file "$W/user.pin" --errlog "$W/agent.err" --token-dir "$W/tokens"
      --kills "${KB_CRASH_KILLS:-210}" --max-seconds 1100)
[ -n "${KB_CRASH_SEED:-}" ] && args+=(--seed "$KB_CRASH_SEED")
# Backups wrap with AES key wrap, which Debian 12's p11-kit (0.24) does not
# carry to an isolated module.
[ "${KB_CRASH_ISOLATE:-}" = 1 ] &&
    args+=(--isolated --no-backups "isolated: backups need AES key wrap through p11-kit's RPC")
# Under sanitizers the agent is several times slower: wait longer before
# each kill, or nearly every request is cut short before it is answered.
if ldd "$KBD" 2>/dev/null | grep -q 'lib[a-z]*san'; then
	args+=(--delay-scale "${KB_CRASH_DELAY_SCALE:-4}")
elif [ -n "${KB_CRASH_DELAY_SCALE:-}" ]; then
	args+=(--delay-scale "$KB_CRASH_DELAY_SCALE")
fi
# KB_CRASH_KEEP=DIR: stop at the first violation and copy the token, the
# store and the agent's log to DIR for a post-mortem.
[ -n "${KB_CRASH_KEEP:-}" ] && args+=(--stop-on-violation)
# The agent reports at start-up every version lacking its object; the
# check needs an agent that has the report (its message in the binary).
if grep -qa "has no object on the token" "$KBD"; then
	args+=(--check-startup-report)
else
	args+=(--startup-report-skip "this keybridged has no start-up report of versions without objects")
fi
python3 "$(dirname "$0")/crashcheck.py" "${args[@]}"
rc=$?
if [ -n "${KB_CRASH_KEEP:-}" ]; then
	rm -rf "$KB_CRASH_KEEP" && cp -a "$W" "$KB_CRASH_KEEP"
fi
exit $rc
