# oauth-setup.sh: sourced by tests that need oauthserver.py.
#
#   . tests/kvclient/oauth-setup.sh
#   oauth_setup DIR     # makes the test CA and certificates in DIR, writes
#                       # DIR/config.json and starts the server; returns 1
#                       # (with OAUTH_WHY set) when something is missing
#   ... OAUTH_PORT (HTTPS), OAUTH_HTTP_PORT (plain http), OAUTH_PID ...
#   oauth_stop
#
# Files in DIR: ca.pem (trust it: ca_file / --ca-file), ca.key, srv.pem,
# client.crt + client.key and client.pem (both, as
# AZURE_CLIENT_CERTIFICATE_PATH wants them), other.crt/.key (another
# RSA certificate), ec.crt/.key, expired.crt (client.key's, expired),
# config.json (see oauthserver.py: add "clients" and rewrite it atomically),
# record.jsonl (what the server saw), server.log.
OAUTH_DIR_OF_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

oauth_setup() {
    local W=$1 i
    OAUTH_WHY=
    for i in openssl python3; do
        command -v $i >/dev/null || { OAUTH_WHY="$i not installed"; return 1; }
    done
    python3 -c 'import cryptography' 2>/dev/null || { OAUTH_WHY="python3 cryptography missing"; return 1; }
    (
    set -e
    umask 077
    exec 2>"$W/setup.log"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" \
        -days 2 -subj "/CN=keybridge OAuth test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/srv.key" -out "$W/srv.csr" -subj "/CN=oauthtest"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$W/srv.ext"
    openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" \
        -CAcreateserial -out "$W/srv.pem" -days 2 -extfile "$W/srv.ext"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/client.key" \
        -out "$W/client.crt" -days 2 -subj "/CN=keybridge test app"
    cat "$W/client.crt" "$W/client.key" >"$W/client.pem"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/other.key" \
        -out "$W/other.crt" -days 2 -subj "/CN=another app"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$W/ec.key" -out "$W/ec.crt" -days 2 -subj "/CN=ec app"
    # Expired yesterday (openssl 3.0's req cannot date back).
    python3 - "$W/client.key" "$W/expired.crt" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired app")])
now = datetime.datetime.now(datetime.timezone.utc)
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n)
     .public_key(key.public_key()).serial_number(x509.random_serial_number())
     .not_valid_before(now - datetime.timedelta(days=3))
     .not_valid_after(now - datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
open(sys.argv[2], "wb").write(c.public_bytes(serialization.Encoding.PEM))
PY
    cat >"$W/config.json" <<JSON
{"tls_cert": "$W/srv.pem", "tls_key": "$W/srv.key",
 "https_port_file": "$W/https.port", "http_port_file": "$W/http.port",
 "record": "$W/record.jsonl", "clients": {}}
JSON
    ) || { OAUTH_WHY="setup failed: $(tail -c 300 "$W/setup.log")"; return 1; }
    python3 "$OAUTH_DIR_OF_SCRIPT/oauthserver.py" "$W/config.json" 2>"$W/server.log" &
    OAUTH_PID=$!
    for i in $(seq 100); do
        [ -s "$W/https.port" ] && [ -s "$W/http.port" ] && break
        sleep 0.1
    done
    [ -s "$W/https.port" ] || { OAUTH_WHY="oauthserver.py did not start: $(head -c 300 "$W/server.log")"; return 1; }
    OAUTH_PORT=$(cat "$W/https.port")
    OAUTH_HTTP_PORT=$(cat "$W/http.port")
    return 0
}

oauth_stop() {
    [ -n "${OAUTH_PID:-}" ] && kill "$OAUTH_PID" 2>/dev/null
    [ -n "${OAUTH_PID:-}" ] && wait "$OAUTH_PID" 2>/dev/null
    OAUTH_PID=
}
