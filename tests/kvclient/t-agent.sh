#!/bin/bash
# t-agent.sh: kv-client against the real agent over HTTPS: `keybridge dev
# up --https` gives a keybridged with a SoftHSM token, its CA and a bearer
# token file; test_agent (TAP) answers its challenge with the token-file
# credential and creates, gets, lists (paging) and deletes keys.
set -u
KB=${KEYBRIDGE_BIN:?KEYBRIDGE_BIN not set}
[ -n "${KEYBRIDGED_BIN:-}" ] && export KEYBRIDGED=$KEYBRIDGED_BIN
: "${KVC_TEST_AGENT:?}"
[ -e "${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" ] ||
	{ echo "1..0 # SKIP SoftHSM2 is not installed"; exit 0; }
W=$(mktemp -d /tmp/kvc-agent.XXXXXX)
D=$W/dev
cleanup() {
	"$KB" dev down --dir "$D" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
unset KEYBRIDGE_SOCKET KEYBRIDGE_CONFIG NOTIFY_SOCKET
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy
if ! "$KB" dev up --dir "$D" --https >"$W/up.out" 2>"$W/up.err"; then
	echo "not ok 1 - dev up --https"
	sed 's/^/# /' "$W/up.err"
	echo "1..1"
	exit 1
fi
eval "$(cat "$W/up.out")"
"$KVC_TEST_AGENT"
rc=$?
[ $rc -ne 0 ] && tail -20 "$D/agent.log" | sed 's/^/# agent: /'
exit $rc
