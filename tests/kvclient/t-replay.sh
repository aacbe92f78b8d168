#!/bin/bash
# t-replay.sh: kv-client against kvreplay.py, which replays conversations
# recorded from real vaults and Managed HSMs (../shared/keyvault/
# recordings) over loopback HTTPS with an openssl-made CA whose server
# certificate names the recordings' hosts.  Runs test_replay (TAP).
set -u
. "$(dirname "$0")/../lib/certs.sh"
need() { command -v "$1" >/dev/null || { echo "1..0 # SKIP $1 not installed"; exit 0; }; }
need openssl
need python3
: "${KVC_TEST_REPLAY:?}"
REC=${KVR_RECORDINGS:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/keyvault/recordings}
[ -d "$REC" ] || { echo "1..0 # SKIP no recordings at $REC"; exit 0; }
W=$(mktemp -d /tmp/kvc-replay.XXXXXX)
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkcerts "$W" "kv-client replay CA" kvreplay \
    IP:127.0.0.1,DNS:sanitized.vault.azure.net,DNS:sanitized.managedhsm.azure.net
python3 "$(dirname "$0")/kvreplay.py" "$W/srv.pem" "$W/srv.key" "$W/port" "$REC" \
    2>"$W/server.log" &
SRV=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || { echo "1..0 # SKIP kvreplay.py did not start: $(head -c 300 "$W/server.log")"; exit 0; }
KVR_PORT=$(cat "$W/port") KVR_CA="$W/ca.pem" KVR_RECORDINGS="$REC" \
    NO_PROXY='*' no_proxy='*' "$KVC_TEST_REPLAY"
rc=$?
[ $rc -ne 0 ] && sed 's/^/# server: /' "$W/server.log" | grep -v '" 200 ' | head -50
exit $rc
