#!/bin/bash
# t-sdk.sh: the official Azure SDK for JavaScript (@azure/keyvault-keys,
# tests/sdk/package-lock.json) drives keybridged over HTTPS.  Starts a dev
# agent with `keybridge dev up --https`, runs interop.mjs once for each
# service version (7.5, 7.6 and the SDK's default), stops the agent.
# One TAP stream: the runs' tests are numbered on, each name says its
# service version.
#
# Environment: KEYBRIDGE_BIN and KEYBRIDGED_BIN (from meson), optional
# KB_SDK_VERSIONS ("7.5 7.6 default") and KB_SDK_TRACE=1 (every request).
# Skips only when node or tests/sdk/node_modules is missing
# (`npm ci --prefix tests/sdk` installs them).

set -u
HERE=$(cd "$(dirname "$0")" && pwd)

command -v node >/dev/null 2>&1 || { echo "1..0 # SKIP node not installed"; exit 0; }
[ -f "$HERE/node_modules/@azure/keyvault-keys/package.json" ] ||
	{ echo "1..0 # SKIP no tests/sdk/node_modules: run npm ci --prefix tests/sdk"; exit 0; }

KB=${KEYBRIDGE_BIN:?KEYBRIDGE_BIN not set}
[ -n "${KEYBRIDGED_BIN:-}" ] && export KEYBRIDGED=$KEYBRIDGED_BIN
VERSIONS=${KB_SDK_VERSIONS:-7.5 7.6 default}

T=0
FAILED=0
W=$(mktemp -d /tmp/kbsdk.XXXXXX) || { echo "1..0 # SKIP mktemp failed"; exit 0; }
D=$W/dev

cleanup() {
	local p
	"$KB" dev down --dir "$D" >/dev/null 2>&1
	# an agent that did not stop: its pid is in the lock file
	p=$(cat "$D/agent.sock.lock" 2>/dev/null)
	[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# TLS must be verified through the dev CA, never switched off.
unset KEYBRIDGE_SOCKET KEYBRIDGE_CONFIG NOTIFY_SOCKET NODE_TLS_REJECT_UNAUTHORIZED NODE_OPTIONS
# the SDK honours proxy variables: the agent is on loopback, go there directly
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy
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

diag() {
	sed 's/^/# /' <<<"$*"
}

"$KB" dev up --dir "$D" --https >"$W/up.out" 2>"$W/up.err"
rc=$?
ok $rc "dev up --https: exit code 0"
if [ $rc -ne 0 ]; then
	diag "$(cat "$W/up.err")"
	echo "1..$T"
	exit 1
fi
eval "$(cat "$W/up.out")"
ok $([ "${KEYBRIDGE_URL:-}" != "${KEYBRIDGE_URL#https://127.0.0.1:}" ]; echo $?) \
    "dev up --https: KEYBRIDGE_URL is https://127.0.0.1:PORT (${KEYBRIDGE_URL:-unset})"
ok $([ -r "${KEYBRIDGE_CA:-/nonexistent}" ] && grep -q 'BEGIN CERTIFICATE' "$KEYBRIDGE_CA"; echo $?) \
    "dev up --https: KEYBRIDGE_CA is a PEM certificate"
ok $([ -s "${KEYBRIDGE_TOKEN_FILE:-/nonexistent}" ]; echo $?) \
    "dev up --https: KEYBRIDGE_TOKEN_FILE holds a token"
export KEYBRIDGE_URL KEYBRIDGE_CA KEYBRIDGE_TOKEN_FILE

for v in $VERSIONS; do
	NODE_EXTRA_CA_CERTS=$KEYBRIDGE_CA node "$HERE/interop.mjs" "$v" \
	    >"$W/out.$v" 2>"$W/err.$v"
	rc=$?
	# renumber the run's TAP into this stream; its plan line is dropped
	while IFS= read -r line; do
		if [[ $line =~ ^(not\ )?ok\ [0-9]+(.*)$ ]]; then
			T=$((T + 1))
			[ -n "${BASH_REMATCH[1]}" ] && [[ $line != *"# TODO"* ]] &&
				FAILED=$((FAILED + 1))
			echo "${BASH_REMATCH[1]}ok $T${BASH_REMATCH[2]}"
		elif [[ ! $line =~ ^1\.\.[0-9]+ ]]; then
			echo "$line"
		fi
	done <"$W/out.$v"
	# a run that died (or failed without saying which test) is a failure too
	if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$W/out.$v"; then
		ok 1 "[$v] interop.mjs exited with $rc"
		diag "$(tail -n 20 "$W/err.$v")"
	elif [ -s "$W/err.$v" ]; then
		diag "$(tail -n 5 "$W/err.$v")"
	fi
done

"$KB" dev down --dir "$D" >"$W/down.out" 2>&1
ok $? "dev down: the agent stops"

echo "1..$T"
[ "$FAILED" -eq 0 ]
