#!/bin/bash
# t-faults.sh: kv-client against kvserver.py, a loopback HTTPS Key Vault
# and token endpoint with an openssl-made CA.  Runs test_faults (TAP).
set -u
. "$(dirname "$0")/../lib/certs.sh"
need() { command -v "$1" >/dev/null || { echo "1..0 # SKIP $1 not installed"; exit 0; }; }
need openssl
need python3
: "${KVC_TEST_FAULTS:?}"
W=$(mktemp -d /tmp/kvc-faults.XXXXXX)
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkcerts "$W" "kv-client test CA" kvtest \
    IP:127.0.0.1,DNS:localhost,DNS:kvtest.vault.azure.net
# A CA nobody signed the server with.
mkotherca "$W"
python3 "$(dirname "$0")/kvserver.py" "$W/srv.pem" "$W/srv.key" "$W/port" \
    2>"$W/server.log" &
SRV=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || { echo "1..0 # SKIP kvserver.py did not start: $(head -c 300 "$W/server.log")"; exit 0; }
KVS_PORT=$(cat "$W/port") KVS_CA="$W/ca.pem" KVS_OTHER_CA="$W/other.pem" \
    KVS_DIR="$W" NO_PROXY='*' no_proxy='*' "$KVC_TEST_FAULTS"
rc=$?
[ $rc -ne 0 ] && sed 's/^/# server: /' "$W/server.log" | head -50
exit $rc
