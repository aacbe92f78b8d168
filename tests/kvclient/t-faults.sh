#!/bin/bash
# t-faults.sh: kv-client against kvserver.py, a loopback HTTPS Key Vault
# and token endpoint with an openssl-made CA.  Runs test_faults (TAP).
set -u
need() { command -v "$1" >/dev/null || { echo "1..0 # SKIP $1 not installed"; exit 0; }; }
need openssl
need python3
: "${KVC_TEST_FAULTS:?}"
W=$(mktemp -d /tmp/kvc-faults.XXXXXX)
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/ca.key" -out "$W/ca.pem" -days 2 -subj "/CN=kv-client test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/srv.key" -out "$W/srv.csr" -subj "/CN=kvtest" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kvtest.vault.azure.net\nextendedKeyUsage=serverAuth\n' >"$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
    -CAcreateserial -out "$W/srv.pem" -days 2 -extfile "$W/ext" 2>/dev/null
# A CA nobody signed the server with.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$W/other.key" -out "$W/other.pem" -days 2 -subj "/CN=other" 2>/dev/null
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
