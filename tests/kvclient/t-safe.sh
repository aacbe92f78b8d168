#!/bin/bash
# t-safe.sh: kv-client's limiter and safe create/import/rotate against
# kvfaultvault.py, a loopback HTTPS vault with versions and injected
# faults, behind an openssl-made CA.  Runs test_safe (TAP).
set -u
. "$(dirname "$0")/../lib/certs.sh"
need() { command -v "$1" >/dev/null || { echo "1..0 # SKIP $1 not installed"; exit 0; }; }
need openssl
need python3
: "${KVC_TEST_SAFE:?}"
W=$(mktemp -d /tmp/kvc-safe.XXXXXX)
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkcerts "$W" "kv-client safe test CA" kvfaultvault \
    "IP:127.0.0.1,DNS:localhost,DNS:*.vault.azure.net,DNS:*.managedhsm.azure.net"
python3 "$(dirname "$0")/kvfaultvault.py" "$W/srv.pem" "$W/srv.key" "$W/port" \
    2>"$W/server.log" &
SRV=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
[ -s "$W/port" ] || { echo "1..0 # SKIP kvfaultvault.py did not start: $(head -c 300 "$W/server.log")"; exit 0; }
KFV_PORT=$(cat "$W/port") KFV_CA="$W/ca.pem" NO_PROXY='*' no_proxy='*' "$KVC_TEST_SAFE"
rc=$?
[ $rc -ne 0 ] && sed 's/^/# server: /' "$W/server.log" | head -50
exit $rc
