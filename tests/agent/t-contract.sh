#!/bin/bash
# Contract tests (issue 4, point 5): every request of Key Vault's own
# examples (../shared/keyvault/spec/2026-04-01/examples) that applies to a
# keys vault is sent to a real keybridged on SoftHSM2 by contract.py, with
# the example's api-version; each is accepted with the example's status
# and answered with the example's field names and JSON types.  Names,
# versions, ciphertexts, signatures and backup blobs are adapted to this
# agent (contract.py says how); examples that do not apply are skipped
# with their reason.  Once over the Unix socket, once over HTTPS with a
# bearer token in a `keybridge dev up --https` environment.
. "$(dirname "$0")/lib.sh"

CONTRACT=$(dirname "$0")/contract.py
EXAMPLES=${KB_KV_EXAMPLES:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/keyvault/spec/2026-04-01/examples}
[ -d "$EXAMPLES" ] || { echo "1..0 # SKIP no Key Vault examples at $EXAMPLES"; exit 0; }

mktoken "$W" kb1
mktoken "$W" kb2 2
S=$W/agent.sock
# Vault main (the default) is purgeable: the examples purge a deleted key.
mkvaultconf "$W/agent.conf" "$S"
backupkeys "$W/agent.conf" 2>"$W/backupkeys.err" ||
	diag "backup-keys: $(cat "$W/backupkeys.err")"
must_start "the agent starts with two vaults on SoftHSM tokens" \
    "$W/agent.conf" "$W/agent.err" wait_socket "$S"

# contract.py prints its TAP lines numbered after ours, and its plan
# line last; we keep the count to go on after it.
run_contract() {	# run_contract ARGS...: its TAP lines, T and FAILED updated
	local line
	python3 "$CONTRACT" --examples "$EXAMPLES" --first $((T + 1)) "$@" >"$W/contract.tap" 2>&1
	while IFS= read -r line; do
		case $line in
		1..*) ;;
		"not ok "*"# TODO"*) T=$((T + 1)); echo "$line" ;;
		"not ok "*) T=$((T + 1)); FAILED=$((FAILED + 1)); echo "$line" ;;
		"ok "*) T=$((T + 1)); echo "$line" ;;
		*) echo "# ${line#\# }" ;;
		esac
	done <"$W/contract.tap"
}

run_contract --socket "$S" --prefix "socket: "
# The same against the second vault through its /vaults/NAME prefix
# would only repeat the paths: t-vault covers the prefix.

# Over HTTPS with a bearer token, as the Azure SDKs talk to the agent:
# a `dev up --https` environment of its own (fresh token, CA, principal).
D=$W/dev
if "$KB" dev up --dir "$D" --https >"$W/devup.out" 2>"$W/devup.err"; then
	ok 0 "keybridge dev up --https"
	KEYBRIDGE_URL='' KEYBRIDGE_CA='' KEYBRIDGE_TOKEN_FILE=''
	eval "$(grep '^export KEYBRIDGE_\(URL\|CA\|TOKEN_FILE\)=' "$W/devup.out")"
	if [ -n "$KEYBRIDGE_URL" ] && [ -n "$KEYBRIDGE_CA" ] && [ -n "$KEYBRIDGE_TOKEN_FILE" ]; then
		ok 0 "dev up --https prints KEYBRIDGE_URL, KEYBRIDGE_CA and KEYBRIDGE_TOKEN_FILE"
		run_contract --url "$KEYBRIDGE_URL" --ca "$KEYBRIDGE_CA" \
		    --token-file "$KEYBRIDGE_TOKEN_FILE" --prefix "https: "
	else
		ok 1 "dev up --https prints KEYBRIDGE_URL, KEYBRIDGE_CA and KEYBRIDGE_TOKEN_FILE"
		diag "$(cat "$W/devup.out")"
	fi
	"$KB" dev down --dir "$D" >/dev/null 2>&1
else
	ok 1 "keybridge dev up --https"
	diag "$(tail -n 20 "$W/devup.err")"
fi

done_testing
